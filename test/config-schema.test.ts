/**
 * The published JSON Schema for configs (schema/kiln-config.schema.json, written with
 * docs/config.md by scripts/gen-config-docs.ts): it is up to date with the code, it is a valid
 * draft 2020-12 schema (ajv, strict mode), every shipped config passes it and names it on its
 * first line, and it rejects what Kiln rejects for unknown keys, wrong types and per-recipe and
 * per-loss options, so an editor flags those as they are typed. Also the readers in
 * src/config/describe.ts, which go through the same JSON Schema.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';

import { configSchema, loadConfig, parseConfigText } from '../src/config/index.js';
import { RECIPES } from '../src/data/recipes/index.js';
import { describeExpected, schemaAt, toJsonSchema, unwrap } from '../src/config/describe.js';
import { CONFIG_JSON_SCHEMA_ID, CONFIG_JSON_SCHEMA_PATH, configJsonSchemaText } from '../src/config/docs.js';
import { BASE_CONFIG } from './helpers/config-base.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMA_FILE = join(REPO, CONFIG_JSON_SCHEMA_PATH);

/** Every shipped YAML config, configs/ and its subfolders (e.g. configs/examples/). */
function shippedConfigs(): string[] {
  return readdirSync(join(REPO, 'configs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.ya?ml$/.test(file))
    .sort()
    .map((file) => join(REPO, 'configs', file));
}

/** The validator for the schema file as committed; strict mode makes unknown keywords and malformed schemas an error. */
function compileSchema(): ValidateFunction {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  return ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
}

function errorText(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');
}

// A valid config (the one test/config.test.ts starts from), as data.
const BASE = parseYaml(BASE_CONFIG) as Record<string, unknown>;

/** BASE with `edit` applied to a deep copy. */
function variant(edit: (config: any) => void): unknown {
  const config = structuredClone(BASE);
  edit(config);
  return config;
}

/** Kiln's own check of config data (given as YAML text, as a file would be; JSON is YAML). */
function loadConfigData(config: unknown): void {
  parseConfigText(JSON.stringify(config), 'variant.yaml');
}

describe('the published config JSON Schema', () => {
  const validate = compileSchema();

  it(`${CONFIG_JSON_SCHEMA_PATH} is up to date (node --import tsx scripts/gen-config-docs.ts)`, () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(configJsonSchemaText());
  });

  it('is a draft 2020-12 schema with an id, a title and descriptions', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe(CONFIG_JSON_SCHEMA_ID);
    expect(schema.title).toEqual(expect.any(String));
    expect(schema.description).toEqual(expect.any(String));
    const train = (schema.properties as Record<string, { properties: Record<string, { description?: string }> }>).train;
    expect(train?.properties.lr?.description).toBe('Peak learning rate');
  });

  it('accepts every shipped config (configs/**/*.yaml)', () => {
    const files = shippedConfigs();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const config = parseYaml(readFileSync(file, 'utf8')) as unknown;
      expect(validate(config), `${relative(REPO, file)}:\n${errorText(validate.errors)}`).toBe(true);
    }
    expect(validate(BASE), errorText(validate.errors)).toBe(true);
  });

  const rejected: [string, (config: any) => void, string][] = [
    ['an unknown top-level key', (c) => (c.sed = 1), '/'],
    ['an unknown nested key', (c) => (c.train.lrr = 0.001), '/train'],
    ['a wrong type', (c) => (c.train.lr = 'fast'), '/train/lr'],
    ['an out-of-range value', (c) => (c.train.steps = 0), '/train/steps'],
    ['a value outside an enum', (c) => (c.train.precision = 'fp16'), '/train/precision'],
    ['a missing required key', (c) => delete c.name, '/'],
    ["an unknown key in a recipe's options", (c) => (c.data.train[0].options = { include_descriptions: true }), '/data/train/0/options'],
    ["a wrong type in a recipe's options", (c) => (c.data.train[0].options = { include_description: 'no' }), '/data/train/0/options/include_description'],
    ["another recipe's option", (c) => (c.data.eval[0].options = { subset: 'tech' }), '/data/eval/0/options'],
    ['a recipe without its required option', (c) => (c.data.eval[0].recipe = 'skill-extraction'), '/data/eval/0'],
    ['an unknown recipe', (c) => (c.data.train[1].recipe = 'esco-skill'), '/data/train/1/recipe'],
    ['a recipe of a kind no task trains on in data.train', (c) => (c.data.train[1].recipe = 'skillspan'), '/data/train/1/recipe'],
    ['a training-pairs recipe in data.eval', (c) => (c.data.eval[0].recipe = 'esco-skills'), '/data/eval/0/recipe'],
    ['an unknown loss', (c) => (c.loss[0].name = 'infonc'), '/loss/0'],
    ["another loss's option", (c) => (c.loss[0] = { name: 'bce', temperature: 0.05 }), '/loss/0'],
    ["a wrong type in a loss's option", (c) => (c.loss[0].symmetric = 'yes'), '/loss/0/symmetric'],
  ];
  it.each(rejected)('rejects %s', (_what, edit, path) => {
    const config = variant(edit);
    expect(() => loadConfigData(config)).toThrow(); // Kiln rejects it too
    expect(validate(config)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath || '/')).toContain(path);
  });

  it('allows in data.train and data.eval exactly the recipes Kiln allows there', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { properties: { data: { properties: Record<'train' | 'eval', { items: { properties: { recipe: { enum: string[] } } } }> } } };
    const lists = {
      train: configSchema.shape.data.shape.train.element,
      eval: configSchema.shape.data.shape.eval.unwrap().element,
    };
    for (const [list, entrySchema] of Object.entries(lists)) {
      // Kiln reports a recipe of the wrong kind at `recipe`; problems with the (here empty) options come under `options`.
      const kilnAllows = Object.keys(RECIPES).filter((name) => {
        const result = entrySchema.safeParse({ name: 'x', recipe: name, metrics: ['mrr'] });
        return result.success || !result.error.issues.some((issue) => issue.path[0] === 'recipe');
      });
      expect(schema.properties.data.properties[list as 'train' | 'eval'].items.properties.recipe.enum, `data.${list}`).toEqual(kilnAllows);
    }
  });
});

describe('shipped configs name the schema', () => {
  it('on their first line, by a path relative to the file, and still load unchanged', () => {
    for (const file of shippedConfigs()) {
      const schemaPath = relative(dirname(file), SCHEMA_FILE).split(sep).join('/');
      const text = readFileSync(file, 'utf8');
      const [firstLine, ...rest] = text.split('\n');
      expect(firstLine, relative(REPO, file)).toBe(`# yaml-language-server: $schema=${schemaPath}`);
      // The modeline is a YAML comment: the data and Kiln's loader see the file as without it.
      expect(parseYaml(text)).toEqual(parseYaml(rest.join('\n')));
      expect(() => loadConfig(file)).not.toThrow();
    }
  });
});

describe('reading schemas through their JSON Schema (src/config/describe.ts)', () => {
  it("describes zod schemas and their JSON Schema alike, without zod's implicit safe-integer bounds", () => {
    const schema = z.number().int().min(1);
    expect(describeExpected(schema)).toBe('an integer >= 1');
    expect(describeExpected(toJsonSchema(schema))).toBe('an integer >= 1');
    expect(describeExpected(z.string().min(1).describe('x').nullable())).toBe('a string of at least 1 character or null');
    expect(unwrap(z.string().describe('inner').nullable().default(null))).toMatchObject({ nullable: true, hasDefault: true, defaultValue: null, description: 'inner' });
  });

  it('finds the schema under a union by the value given (a list option, a discriminated member)', () => {
    const data = { distill: { layer_map: [[1, 200]] }, loss: [{ name: 'bce' }] };
    expect(describeExpected(schemaAt(configSchema, ['distill', 'layer_map', 0, 1], data)!)).toBe('an integer >= 0 and <= 96');
    expect(describeExpected(schemaAt(configSchema, ['loss', 0, 'scale'], data)!)).toBe('a number > 0');
    expect(schemaAt(configSchema, ['loss', 0, 'temperature'], data)).toBeUndefined();
  });
});
