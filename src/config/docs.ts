/**
 * The config reference, generated from the zod schema (./schema.ts) and the recipe, loss and
 * metric registries: `configReference()` is docs/config.md (written by
 * scripts/gen-config-docs.ts), `configHelpText()` the epilogue of `kiln train --help`.
 */
import { RECIPES } from '../data/recipes/index.js';
import { METRIC_NAMES_HELP } from '../eval/metrics/index.js';
import { describeExpected, discriminatorValues, objectShape, unwrap, type Schema } from './describe.js';
import { configSchema } from './schema.js';

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

interface DefOf {
  type: string;
  [key: string]: unknown;
}

function defOf(schema: Schema): DefOf {
  return schema._zod.def as unknown as DefOf;
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

function defaultText(schema: Schema): string {
  const u = unwrap(schema);
  if (u.hasDefault) return formatDefault(u.defaultValue);
  return u.optional ? 'optional' : 'required';
}

function row(path: string, schema: Schema, description?: string): ConfigKeyDoc {
  const u = unwrap(schema);
  return { path, type: withoutArticle(describeExpected(schema)), default: defaultText(schema), description: description ?? u.description ?? '' };
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/**
 * The documented keys under `schema`: leaves, plus a row for each list and for each mapping
 * that is optional or nullable. The members of a discriminated union in a list are listed
 * as `path[tag=value].key`.
 */
export function schemaKeys(schema: Schema, prefix = ''): ConfigKeyDoc[] {
  const u = unwrap(schema);
  const def = defOf(u.schema);
  const rows: ConfigKeyDoc[] = [];
  switch (def.type) {
    case 'object': {
      if (prefix !== '' && (u.nullable || u.optional)) rows.push(row(prefix, schema));
      for (const [key, child] of Object.entries(def.shape as Record<string, Schema>)) rows.push(...schemaKeys(child, join(prefix, key)));
      return rows;
    }
    case 'array': {
      rows.push(row(prefix, schema));
      const element = unwrap(def.element as Schema).schema;
      const elementDef = defOf(element);
      if (elementDef.type === 'object') rows.push(...schemaKeys(element, `${prefix}[]`));
      const disc = discriminatorValues(element);
      if (disc !== undefined) {
        for (const option of elementDef.options as Schema[]) {
          const shape = objectShape(unwrap(option).schema) ?? {};
          const tag = unwrap(shape[disc.key] as Schema).schema;
          const tagValue = String((defOf(tag).values as unknown[] | undefined)?.[0] ?? '?');
          for (const [key, child] of Object.entries(shape)) {
            if (key === disc.key) continue;
            rows.push(...schemaKeys(child, `${prefix}[${disc.key}=${tagValue}].${key}`));
          }
        }
      }
      return rows;
    }
    default:
      return [row(prefix, schema)];
  }
}

/** Every documented key of the run config. */
export function configKeys(): ConfigKeyDoc[] {
  return schemaKeys(configSchema);
}

/** Rules that span several keys (the schema's refinements), in words. */
const CROSS_FIELD_RULES = [
  '`data.train[].recipe` must yield training pairs; `data.eval[].recipe` a retrieval split or scored pairs. Each recipe\'s `options` are checked against that recipe\'s own options (below).',
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

function lossDocs(): LossDoc[] {
  const loss = objectShape(unwrap(configSchema).schema)?.loss;
  if (loss === undefined) return [];
  const element = unwrap(defOf(unwrap(loss).schema).element as Schema).schema;
  const disc = discriminatorValues(element);
  if (disc === undefined) return [];
  return (defOf(element).options as Schema[]).map((option) => {
    const shape = objectShape(unwrap(option).schema) ?? {};
    const tag = shape[disc.key] as Schema;
    const name = String((defOf(unwrap(tag).schema).values as unknown[] | undefined)?.[0] ?? '?');
    const keys = Object.entries(shape)
      .filter(([key]) => key !== disc.key)
      .flatMap(([key, child]) => schemaKeys(child, key));
    return { name, citation: unwrap(tag).description ?? '', keys };
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
    keys: schemaKeys(recipe.options as Schema),
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

  out.push('## Recipes', '', 'Used in `data.train[]` (recipes that yield `pairs`) and `data.eval[]` (`retrieval` or `scored-pairs`); the table lists each recipe\'s `options`.', '');
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
