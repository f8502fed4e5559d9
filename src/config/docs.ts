/**
 * The config reference, generated from the zod schema (./schema.ts) and the recipe, loss and
 * metric registries, all read through their JSON Schema (./describe.ts):
 * - `configReference()` is docs/config.md and `configJsonSchemaText()` the published JSON Schema
 *   schema/kiln-config.schema.json (both written by scripts/gen-config-docs.ts);
 * - `configHelpText()` is the epilogue of `kiln train --help`.
 */
import { RECIPES, type RecipeKind } from '../data/recipes/index.js';
import { METRIC_NAMES_HELP } from '../eval/metrics/index.js';
import { describeExpected, discriminatorValues, listItems, literalValues, propertiesOf, schemaAt, toJsonSchema, unwrap, type JsonSchema, type Schema } from './describe.js';
import { configSchema } from './schema.js';
import { TASK_SPECS } from './tasks.js';

/** Where the JSON Schema is written, relative to the repository root; configs name it relative to themselves. */
export const CONFIG_JSON_SCHEMA_PATH = 'schema/kiln-config.schema.json';

/**
 * The schema's `$id`. Kiln has no web address to serve it from, so the id is a URN: a stable
 * name that no tool tries to fetch (editors find the file through the configs' modeline).
 */
export const CONFIG_JSON_SCHEMA_ID = 'urn:kiln:config-schema';

/**
 * The recipe kinds each recipe list takes. schema.ts checks them in refinements, which JSON
 * Schema cannot carry, so they are restated here (test/config-schema.test.ts checks they agree
 * with Kiln): `data.train` takes what some task trains on (which task, Kiln checks on load),
 * `data.eval` what schema.ts's evalSchema passes to checkRecipeOptions.
 */
const RECIPE_LIST_KINDS: Record<'train' | 'eval', readonly RecipeKind[]> = {
  train: [...new Set(Object.values(TASK_SPECS).flatMap((task) => task.trainRecipeKinds))],
  eval: ['retrieval', 'scored-pairs'],
};

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** One documented key. */
export interface ConfigKeyDoc {
  /** `train.lr`, `data.train[].recipe`, `loss[name=infonce].temperature`. */
  path: string;
  /** What it accepts, e.g. `integer >= 1`, `one of: fp32, bf16`. */
  type: string;
  /** The default as YAML-ish text, `required`, or `optional`. */
  default: string;
  description: string;
}

function withoutArticle(text: string): string {
  return text.replace(/^(a|an) /, '');
}

/** A default value as written in YAML flow style. */
function formatDefault(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return /^[A-Za-z0-9_./@-]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(formatDefault).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length === 0 ? '{}' : `{${entries.map(([k, v]) => `${k}: ${formatDefault(v)}`).join(', ')}}`;
  }
  return String(value);
}

/** `required` says whether the parent object requires the key: JSON Schema keeps that on the parent. */
function defaultText(schema: Schema, required: boolean): string {
  const u = unwrap(schema);
  if (u.hasDefault) return formatDefault(u.defaultValue);
  return required ? 'required' : 'optional';
}

function row(path: string, schema: Schema, required: boolean): ConfigKeyDoc {
  return { path, type: withoutArticle(describeExpected(schema)), default: defaultText(schema, required), description: unwrap(schema).description ?? '' };
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** Whether the parent object of a key requires it. */
function requires(parent: JsonSchema, key: string): boolean {
  return (parent.required ?? []).includes(key);
}

/** The literal a discriminated-union option pins its tag key to, as text. */
function tagValue(option: JsonSchema, key: string): string {
  const tag = propertiesOf(option)?.[key];
  return String((tag === undefined ? undefined : literalValues(tag))?.[0] ?? '?');
}

/**
 * The documented keys under `schema`: leaves, plus a row for each list and for each mapping
 * that is nullable, or optional without a default. The members of a discriminated union in a
 * list are listed as `path[tag=value].key`. `required`: whether the parent requires `schema`.
 */
export function schemaKeys(schema: Schema, prefix = '', required = true): ConfigKeyDoc[] {
  const u = unwrap(schema);
  const node = u.schema;
  const rows: ConfigKeyDoc[] = [];
  const properties = node.type === 'object' ? propertiesOf(node) : undefined;
  if (properties !== undefined) {
    if (prefix !== '' && (u.nullable || (!required && !u.hasDefault))) rows.push(row(prefix, schema, required));
    for (const [key, child] of Object.entries(properties)) rows.push(...schemaKeys(child, join(prefix, key), requires(node, key)));
    return rows;
  }
  // A tuple (`prefixItems`) is one leaf, like a scalar.
  if (node.type === 'array' && node.prefixItems === undefined) {
    rows.push(row(prefix, schema, required));
    const items = listItems(node);
    if (items === undefined) return rows;
    const element = unwrap(items).schema;
    if (element.type === 'object' && propertiesOf(element) !== undefined) rows.push(...schemaKeys(element, `${prefix}[]`));
    const disc = discriminatorValues(element);
    if (disc !== undefined) {
      for (const option of (element.oneOf ?? element.anyOf ?? []).map((o) => unwrap(o).schema)) {
        const tag = tagValue(option, disc.key);
        for (const [key, child] of Object.entries(propertiesOf(option) ?? {})) {
          if (key === disc.key) continue;
          rows.push(...schemaKeys(child, `${prefix}[${disc.key}=${tag}].${key}`, requires(option, key)));
        }
      }
    }
    return rows;
  }
  return [row(prefix, schema, required)];
}

/** Every documented key of the run config. */
export function configKeys(): ConfigKeyDoc[] {
  return schemaKeys(configSchema);
}

/** What each task trains on, e.g. `twotower: pairs or retrieval; mlm: corpus`. */
function trainKindsByTask(): string {
  return Object.entries(TASK_SPECS)
    .map(([task, spec]) => `${task}: ${orList(spec.trainRecipeKinds)}`)
    .join('; ');
}

/** Rules that span several keys (the schema's refinements), in words. */
const CROSS_FIELD_RULES = [
  `\`data.train[].recipe\` must yield what the task trains on (${trainKindsByTask()}), and \`data.eval[].recipe\` must yield ${orList(RECIPE_LIST_KINDS.eval)}. Each recipe's \`options\` are checked against that recipe's own options (below).`,
  '`data.eval[].metrics` are metric names (below); `data.eval[].name` values must be unique.',
  'Without `model.preset`, `model.hidden_size`, `num_layers`, `num_heads` and `intermediate_size` are required; explicit sizes override a preset.',
  '`model.num_heads` must divide `model.hidden_size`.',
  '`train.warmup_steps` must not exceed `train.steps`.',
  '`train.early_stopping.metric` must be `<eval name>/<metric>` of a metric listed in `data.eval`, and early stopping needs `train.eval_every > 0`.',
];

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/<(?=[A-Za-z/!?])/g, '&lt;').replace(/\n/g, ' ');
}

function table(rows: readonly ConfigKeyDoc[], keyHeader: string, strip = ''): string {
  const lines = [`| ${keyHeader} | Type | Default | Description |`, '| --- | --- | --- | --- |'];
  for (const r of rows) {
    const key = strip !== '' && r.path.startsWith(strip) ? r.path.slice(strip.length) : r.path;
    lines.push(`| \`${cell(key)}\` | ${cell(r.type)} | ${r.default === 'required' || r.default === 'optional' ? r.default : `\`${cell(r.default)}\``} | ${cell(r.description)} |`);
  }
  return lines.join('\n');
}

interface LossDoc {
  name: string;
  citation: string;
  keys: ConfigKeyDoc[];
}

/** One section per member of the `loss:` entries' discriminated union (src/losses/index.ts). */
function lossDocs(): LossDoc[] {
  const entry = schemaAt(configSchema, ['loss', 0], undefined);
  const disc = entry === undefined ? undefined : discriminatorValues(entry);
  if (entry === undefined || disc === undefined) return [];
  return (entry.oneOf ?? entry.anyOf ?? []).map((member) => {
    const option = unwrap(member).schema;
    const properties = propertiesOf(option) ?? {};
    const keys = Object.entries(properties)
      .filter(([key]) => key !== disc.key)
      .flatMap(([key, child]) => schemaKeys(child, key, requires(option, key)));
    const tag = properties[disc.key];
    return { name: tagValue(option, disc.key), citation: tag === undefined ? '' : (unwrap(tag).description ?? ''), keys };
  });
}

interface RecipeDoc {
  name: string;
  kind: string;
  description: string;
  keys: ConfigKeyDoc[];
}

function recipeDocs(): RecipeDoc[] {
  return Object.entries(RECIPES).map(([name, recipe]) => ({
    name,
    kind: recipe.kind,
    description: recipe.description,
    keys: schemaKeys(recipe.options),
  }));
}

/** The full config reference as markdown (docs/config.md). */
export function configReference(): string {
  const keys = configKeys();
  const out: string[] = [
    '<!-- Generated by scripts/gen-config-docs.ts from src/config/schema.ts and the recipe, loss and metric registries. Do not edit: run `node --import tsx scripts/gen-config-docs.ts`. -->',
    '',
    '# Config reference',
    '',
    'A run is configured by one YAML file (examples in [configs/](../configs/)), validated before anything runs: every unknown key, wrong type or out-of-range value is reported with its file, line and column. Keys are snake_case.',
    '',
    'Any value can be overridden from the command line with `--set key.path=value` (repeatable), e.g. `--set train.lr=3e-4`, `--set train.clip_grad_norm=null`, `--set data.eval[0].max_queries=100`, `--set \'model.prompts={title: "job title: {text}"}\'`. The value is read as YAML. Each run saves the resolved config (all defaults filled in) as `config.yaml` in its run directory.',
    '',
    `**Checking in the editor.** The same schema is published as a JSON Schema, [${CONFIG_JSON_SCHEMA_PATH}](../${CONFIG_JSON_SCHEMA_PATH}) (generated with this page), and every config in configs/ names it on its first line: \`# yaml-language-server: $schema=../${CONFIG_JSON_SCHEMA_PATH}\` (the path is relative to the YAML file). VS Code with Red Hat's YAML extension, or any editor that runs yaml-language-server, reads that line and then completes keys, shows the descriptions below on hover, and marks unknown keys, wrong types and out-of-range values as you type, including each recipe's \`options\` and each loss's keys. Copy the line into a new config, adjusting the path. The rules across keys and the metric names (below) are checked by Kiln only, when it loads the config.`,
    '',
    'In the tables, `[]` stands for every item of a list and `loss[name=X]` for the loss entries named X. *required* keys have no default; *optional* keys may be left out.',
    '',
  ];
  const topLevel: ConfigKeyDoc[] = [];
  const sections = new Map<string, ConfigKeyDoc[]>();
  for (const k of keys) {
    const section = /^[A-Za-z0-9_-]+/.exec(k.path)?.[0] ?? k.path;
    if (k.path === section && section !== 'loss') topLevel.push(k);
    else if (section !== 'loss' || k.path === 'loss') sections.set(section, [...(sections.get(section) ?? []), k]); // loss options: per loss below
  }
  out.push('## Top level', '', table(topLevel, 'Key'), '');
  for (const [section, rows] of sections) {
    out.push(`## \`${section}\``, '');
    if (section === 'loss') out.push('A list of losses, summed with their weights. Each entry has a `name` (one of the losses below), a `weight` and that loss\'s options.', '');
    out.push(table(rows, 'Key'), '');
  }
  out.push('## Rules across keys', '', ...CROSS_FIELD_RULES.map((r) => `- ${r}`), '');

  const kindList = (kinds: readonly string[]): string => orList(kinds.map((kind) => `\`${kind}\``));
  out.push('## Recipes', '', `Used in \`data.train[]\` (recipes that yield ${kindList(RECIPE_LIST_KINDS.train)}, as the task allows) and \`data.eval[]\` (${kindList(RECIPE_LIST_KINDS.eval)}); the table lists each recipe's \`options\`.`, '');
  for (const recipe of recipeDocs()) {
    out.push(`### \`${recipe.name}\` (${recipe.kind})`, '', recipe.description, '');
    out.push(recipe.keys.length === 0 ? 'No options.' : table(recipe.keys, 'Option'), '');
  }

  out.push('## Losses', '', 'Entries of `loss:`, e.g. `{name: infonce, weight: 1, temperature: 0.05}`.', '');
  for (const loss of lossDocs()) {
    out.push(`### \`${loss.name}\``, '');
    if (loss.citation !== '') out.push(loss.citation, '');
    out.push(table(loss.keys, 'Key'), '');
  }

  out.push('## Metrics', '', 'Names accepted in `data.eval[].metrics` (case-insensitive; `K` a positive integer). Metric keys in logs and `train.early_stopping.metric` are `<eval name>/<metric>`.', '', '```text', METRIC_NAMES_HELP, '```', '');
  return out.join('\n');
}

/** Compact plain-text reference, one line per key: `key.path  type  (default X)  description`. */
export function configHelpText(): string {
  const keys = configKeys();
  const width = Math.min(40, Math.max(...keys.map((k) => k.path.length)));
  const lines = keys.map((k) => {
    const dflt = k.default === 'required' ? '(required)' : k.default === 'optional' ? '(optional)' : `(default ${k.default})`;
    return `  ${k.path.padEnd(width)}  ${k.type}  ${dflt}${k.description === '' ? '' : `  ${k.description}`}`;
  });
  const recipes = Object.entries(RECIPES)
    .map(([name, recipe]) => `${name} (${recipe.kind})`)
    .join(', ');
  const metrics = METRIC_NAMES_HELP.split('\n')
    .map((line) => line.trim().split(/\s{2,}/)[0] ?? '')
    .join(', ');
  lines.push('', `Recipes: ${recipes}`, `Metrics: ${metrics}`, 'Override any key with --set key.path=value (YAML value). Full reference: docs/config.md');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The published JSON Schema (for editors)

/** A converted schema to nest inside another: a copy without its own `$schema`. */
function nested(schema: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = structuredClone(schema);
  return rest;
}

/**
 * Narrows a recipe list's entry schema: `recipe` to the recipes of the kinds the list takes
 * (RECIPE_LIST_KINDS), and for each of them an if/then that checks `options` against that
 * recipe's own options (and requires `options` when the recipe has a required option). zod
 * checks options in a refinement, so its conversion only says "a mapping".
 */
function addRecipeOptions(entry: JsonSchema | undefined, list: keyof typeof RECIPE_LIST_KINDS): void {
  const properties = entry?.properties;
  if (entry === undefined || properties?.recipe === undefined || properties.options === undefined) {
    throw new Error(`config JSON Schema: data.${list}[] has no recipe and options keys any more; update addRecipeOptions in src/config/docs.ts`);
  }
  const kinds = RECIPE_LIST_KINDS[list];
  const recipes = Object.entries(RECIPES).filter(([, recipe]) => kinds.includes(recipe.kind));
  properties.recipe = { ...(properties.recipe as JsonSchema), enum: recipes.map(([name]) => name) };
  entry.allOf = [
    ...(entry.allOf ?? []),
    ...recipes.map(([name, recipe]): JsonSchema => {
      const options: JsonSchema = { ...nested(toJsonSchema(recipe.options)), description: `Options of recipe ${name} (${recipe.kind}): ${recipe.description}` };
      const then: JsonSchema = { properties: { options } };
      if ((options.required ?? []).length > 0) then.required = ['options'];
      return { if: { properties: { recipe: { const: name } }, required: ['recipe'] }, then };
    }),
  ];
}

/**
 * The config schema as a standalone JSON Schema (draft 2020-12) for editors and other tools:
 * the zod schema's conversion, with each recipe's options checked per recipe. Loss entries are
 * zod's discriminated union, written as a `oneOf` whose members pin `name` with `const`.
 */
export function configJsonSchema(): JsonSchema {
  const body = nested(toJsonSchema(configSchema));
  addRecipeOptions(schemaAt(body, ['data', 'train', 0], undefined), 'train');
  addRecipeOptions(schemaAt(body, ['data', 'eval', 0], undefined), 'eval');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: CONFIG_JSON_SCHEMA_ID,
    title: 'Kiln run config',
    description:
      'A run config for `kiln train --config FILE` (YAML). Generated from src/config/schema.ts by scripts/gen-config-docs.ts; docs/config.md documents every key. Kiln checks the config again when it loads it, with the rules across keys that JSON Schema cannot express.',
    ...body,
  };
}

/** The text of schema/kiln-config.schema.json. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
