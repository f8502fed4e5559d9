/**
 * Writes the config reference, docs/config.md, and the JSON Schema for editors,
 * schema/kiln-config.schema.json, from the config schema and the registries:
 *   node --import tsx scripts/gen-config-docs.ts          write both
 *   node --import tsx scripts/gen-config-docs.ts --check  exit 1 if either is out of date
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CONFIG_JSON_SCHEMA_PATH, configJsonSchemaText, configReference } from '../src/config/docs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outputs = [
  { target: join(root, 'docs', 'config.md'), text: configReference() },
  { target: join(root, CONFIG_JSON_SCHEMA_PATH), text: configJsonSchemaText() },
];

if (process.argv.includes('--check')) {
  let stale = false;
  for (const { target, text } of outputs) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing counts as out of date
    }
    if (current === text) {
      process.stdout.write(`${target} is up to date\n`);
    } else {
      process.stderr.write(`${target} is out of date: run node --import tsx scripts/gen-config-docs.ts\n`);
      stale = true;
    }
  }
  if (stale) process.exit(1);
} else {
  for (const { target, text } of outputs) {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    process.stdout.write(`wrote ${target}\n`);
  }
}
