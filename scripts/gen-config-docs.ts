/**
 * Writes docs/config.md from the config schema and the registries:
 *   node --import tsx scripts/gen-config-docs.ts          write it
 *   node --import tsx scripts/gen-config-docs.ts --check  exit 1 if it is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { configReference } from '../src/config/docs.js';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'config.md');
const text = configReference();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing counts as out of date
  }
  if (current !== text) {
    process.stderr.write(`${target} is out of date: run node --import tsx scripts/gen-config-docs.ts\n`);
    process.exit(1);
  }
  process.stdout.write(`${target} is up to date\n`);
} else {
  writeFileSync(target, text);
  process.stdout.write(`wrote ${target}\n`);
}
