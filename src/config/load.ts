/**
 * Loading a run config: YAML (kept as a document, so every problem can name its line and
 * column), `--set` overrides applied to that document, validation by the zod schema in
 * ./schema.ts, and the resolved config (defaults filled in) as YAML for the run directory.
 *
 * Every problem found is reported, one message each, in a single ConfigError:
 *
 *   configs/x.yaml:12:5: train.lrr: unknown key 'lrr' (did you mean 'lr'?)
 *   configs/x.yaml:14:14: train.precision: expected one of: fp32, bf16, got "fp16"
 *   configs/x.yaml: train.lr: expected a number > 0 and <= 1, got -1 (from --set train.lr=-1)
 *
 * A caller that is about to compute with the config (`kiln train`, `kiln eval --run`) also
 * passes the machine (`THIS_MACHINE`): a config that passes the schema is then checked against
 * it (train.device: cuda where CUDA is missing) before any data loads. Without one the check
 * is skipped: `kiln export` of a CUDA-trained run works on a CPU machine, and tests pass
 * their own `MachineCapabilities`. Nothing here writes to disk.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { Document, LineCounter, isAlias, isMap, isNode, isPair, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { z } from 'zod';

import { RECIPES, type Recipe } from '../data/recipes/index.js';
import { METRICS } from '../eval/metrics/index.js';
import { KILN_VERSION } from '../version.js';
import { allowedKeys, describeExpected, discriminatorValues, schemaAt, unwrap, type ChildResolver, type Schema } from './describe.js';
import { ConfigError, didYouMean, formatPath, formatValue } from './errors.js';
import { applyOverrides, type AppliedOverride } from './overrides.js';
import { configSchema, type KilnConfig, type Precision } from './schema.js';
import { TASK_SPECS } from './tasks.js';
import { lossEntrySchema } from '../losses/index.js';
import { cpuBf16Instruction, cudaUnavailableReason } from '../engine/runtime.js';

/**
 * What a config needs to know about the machine it would run on. Asked only after the schema
 * passes, and only about what the config uses, so validation stays pure for every other config.
 */
export interface MachineCapabilities {
  /** Why `train.device: cuda` cannot work here, or null when it can. */
  cudaUnavailableReason(): string | null;
  /** The CPU's bf16 instruction (avx512_bf16, amx_bf16, bf16), or null: what `train.precision: auto` asks. */
  cpuBf16Instruction(): string | null;
}

/** This process's machine, as the libtorch addon and /proc/cpuinfo report it (`kiln info`). */
export const THIS_MACHINE: MachineCapabilities = { cudaUnavailableReason, cpuBf16Instruction: () => cpuBf16Instruction() };

export interface LoadedConfig {
  /** The validated config, defaults filled in. */
  config: KilnConfig;
  /** The full resolved config as YAML, with a header comment; what a run saves as config.yaml. */
  resolvedYaml: string;
  /** The file the config came from (as given). */
  sourcePath: string;
}

/** Reads, overrides and validates a config file. Throws ConfigError listing every problem. Writes nothing. */
export function loadConfig(path: string, overrides: readonly string[] = [], machine?: MachineCapabilities): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new ConfigError([`${path}: cannot read the config file: ${why}`]);
  }
  return parseConfigText(text, path, overrides, machine);
}

/**
 * Loads the resolved config a run saved (`<runDir>/config.yaml`, or a path to that file) to
 * resume it: validated like any config; `resolvedYaml` is the saved text, unchanged.
 */
export function loadResolvedRunConfig(runDir: string, machine?: MachineCapabilities): LoadedConfig {
  const path = /\.ya?ml$/i.test(runDir) ? runDir : join(runDir, 'config.yaml');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (is this a run directory?)' : (error as Error).message;
    throw new ConfigError([`${path}: cannot read the run's config: ${why}`]);
  }
  const loaded = parseConfigText(text, path, [], machine);
  return { ...loaded, resolvedYaml: text };
}

/** Like `loadConfig`, for config text already in memory; `sourceName` is used in messages. */
export function parseConfigText(text: string, sourceName: string, overrides: readonly string[] = [], machine?: MachineCapabilities): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });

  const problems: string[] = [];
  for (const error of doc.errors) {
    const offset = error.pos[0];
    const { line, col } = lineCounter.linePos(offset);
    problems.push(`${sourceName}:${line}:${col}: YAML syntax error: ${firstLine(error.message)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const { applied, problems: overrideProblems } = applyOverrides(doc, overrides);
  if (overrideProblems.length > 0) throw new ConfigError(overrideProblems.map((p) => `${sourceName}: ${p}`));

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    throw new ConfigError([`${sourceName}: ${(error as Error).message}`]);
  }

  resolveRecipePaths(data, dirname(resolve(sourceName)));
  const result = configSchema.safeParse(data);
  const locator = new Locator(doc, lineCounter, sourceName, applied);
  if (!result.success) throw new ConfigError(issueMessages(result.error.issues, data, locator));
  const unsupported = machine === undefined ? [] : machineProblems(result.data, machine, locator);
  if (unsupported.length > 0) throw new ConfigError(unsupported);
  // `auto` is resolved even where no machine is given for the checks: a run needs one precision.
  const config = resolveDefaults(structuredClone(result.data), machine ?? THIS_MACHINE);
  return { config, resolvedYaml: resolvedYaml(config, sourceName, overrides), sourcePath: sourceName };
}

/** What a valid config asks of this machine that it does not have, one message each with its location. */
function machineProblems(config: z.output<typeof configSchema>, machine: MachineCapabilities, locator: Locator): string[] {
  const problems: string[] = [];
  if (config.train.device === 'cuda') {
    const why = machine.cudaUnavailableReason();
    if (why !== null) {
      const at = locator.locate(['train', 'device']);
      problems.push(`${at.where}: train.device: cuda is not available here: ${why}; use cpu${at.suffix}`);
    }
  }
  return problems;
}

/** The resolved config as YAML with a header naming the Kiln version, the source and the overrides. */
export function resolvedYaml(config: KilnConfig, sourceName: string, overrides: readonly string[] = []): string {
  const header = [
    `Resolved Kiln config (kiln ${KILN_VERSION}): every default filled in.`,
    `source: ${sourceName}`,
    overrides.length === 0 ? 'overrides: none' : `overrides: ${overrides.map((o) => `--set ${o}`).join(' ')}`,
  ];
  const body = new Document(config, { aliasDuplicateObjects: false });
  // Lists of scalars (metrics, betas) read best on one line.
  visit(body, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return `${header.map((line) => `# ${line.replace(/\n/g, ' ')}`).join('\n')}\n${body.toString({ lineWidth: 0, flowCollectionPadding: false })}`;
}

/**
 * Makes the file paths in recipes' options absolute against the config file's directory (each
 * recipe says which options are paths: `Recipe.resolvePaths`), so the run's saved config names
 * the same files wherever it is resumed from. Runs on the raw data before validation; anything
 * not shaped like a recipe entry is left for the schema to report.
 */
function resolveRecipePaths(data: unknown, baseDir: string): void {
  const section = (data as { data?: { train?: unknown; eval?: unknown } } | null)?.data;
  if (section === undefined || section === null || typeof section !== 'object') return;
  for (const list of [section.train, section.eval]) {
    if (!Array.isArray(list)) continue;
    for (const entry of list as unknown[]) {
      if (entry === null || typeof entry !== 'object') continue;
      const use = entry as { recipe?: unknown; options?: unknown };
      const recipe = typeof use.recipe === 'string' ? (RECIPES as Record<string, Recipe | undefined>)[use.recipe] : undefined;
      if (recipe?.resolvePaths === undefined || use.options === null || typeof use.options !== 'object' || Array.isArray(use.options)) continue;
      use.options = recipe.resolvePaths(use.options as Record<string, unknown>, baseDir);
    }
  }
}

/**
 * Fills in what the schema leaves as written: each recipe's option defaults (so the saved
 * config pins them even if a recipe's defaults change later), and puts `name` and `weight`
 * first in each loss entry.
 */
function resolveDefaults(parsed: z.output<typeof configSchema>, machine: Pick<MachineCapabilities, 'cpuBf16Instruction'>): KilnConfig {
  const { precision } = parsed.train;
  const config: KilnConfig = { ...parsed, train: { ...parsed.train, precision: precision === 'auto' ? autoPrecision(parsed.train.device, machine) : precision } };
  const withOptions = <T extends { recipe: string; options: Record<string, unknown> }>(entry: T): T => {
    const recipe = (RECIPES as Record<string, { options: z.ZodType } | undefined>)[entry.recipe];
    const parsed = recipe?.options.safeParse(entry.options);
    return parsed?.success === true ? { ...entry, options: parsed.data as Record<string, unknown> } : entry;
  };
  config.data.train = config.data.train.map(withOptions);
  config.data.eval = config.data.eval.map(withOptions);
  // A task with its own loss (mlm, cross-encoder) fills it in when `loss:` is left out, so the saved config pins it.
  const defaultLoss = TASK_SPECS[config.task].defaultLoss;
  if (config.loss.length === 0 && defaultLoss !== null) config.loss = defaultLoss.map((entry) => lossEntrySchema.parse(entry));
  config.loss = config.loss.map(({ name, weight, ...options }) => ({ name, weight, ...options }) as KilnConfig['loss'][number]);
  return config;
}

/**
 * `train.precision: auto`: bf16 on CUDA (autocast's bf16 is native on the GPUs Kiln targets) and
 * on a CPU with bf16 instructions; fp32 on other CPUs, where bf16 is emulated and slower.
 */
function autoPrecision(device: 'cpu' | 'cuda', machine: Pick<MachineCapabilities, 'cpuBf16Instruction'>): Precision {
  return device === 'cuda' || machine.cpuBf16Instruction() !== null ? 'bf16' : 'fp32';
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

// ---------------------------------------------------------------------------------------------
// Locating a key path in the document

interface Location {
  /** `file:line:col` or `file`. */
  where: string;
  /** ` (from --set …)` or empty. */
  suffix: string;
  /** Character offset, for ordering; Infinity when unknown. */
  offset: number;
}

function rangeStart(node: unknown): number | undefined {
  if (!isNode(node)) return undefined;
  const range = node.range;
  return range === undefined || range === null ? undefined : range[0];
}

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => String(path[i]) === String(k));
}

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly sourceName: string,
    private readonly applied: readonly AppliedOverride[],
  ) {}

  private at(offset: number | undefined): Location | undefined {
    if (offset === undefined) return undefined;
    const { line, col } = this.lineCounter.linePos(offset);
    return { where: `${this.sourceName}:${line}:${col}`, suffix: '', offset };
  }

  private fromOverride(o: AppliedOverride): Location {
    return { where: this.sourceName, suffix: ` (from --set ${o.text})`, offset: Infinity };
  }

  /**
   * Where the value at `path` (or, with `keyOnly`, its key) is written. A missing key is
   * located at its nearest existing parent; a value set by `--set` names that override.
   */
  locate(path: readonly PropertyKey[], keyOnly = false): Location {
    for (let i = this.applied.length - 1; i >= 0; i--) {
      const o = this.applied[i] as AppliedOverride;
      if (startsWith(path, o.path)) return this.fromOverride(o);
    }
    // Walk the document as far as the path exists, remembering the last key or item node.
    let node: unknown = this.doc.contents;
    let anchor: unknown = undefined; // key node (map entry) or item node (list)
    let found = true;
    for (const key of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && String(isScalar(p.key) ? p.key.value : p.key) === String(key));
        if (pair === undefined) {
          found = false;
          break;
        }
        anchor = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
        node = node.items[key];
        anchor = node;
      } else {
        found = false;
        break;
      }
    }
    let offset: number | undefined;
    if (found) {
      const valueStart = keyOnly ? undefined : rangeStart(node);
      const valueIsEmpty = isScalar(node) && node.value === null && node.source === '';
      offset = valueStart !== undefined && !valueIsEmpty ? valueStart : rangeStart(anchor);
    } else {
      offset = rangeStart(anchor);
    }
    const location = this.at(offset);
    if (location !== undefined) return location;
    // Not in the file: created by an override below or at this path, or missing altogether.
    for (let i = this.applied.length - 1; i >= 0; i--) {
      const o = this.applied[i] as AppliedOverride;
      if (startsWith(o.path, path)) return this.fromOverride(o);
    }
    return { where: this.sourceName, suffix: '', offset: Infinity };
  }
}

// ---------------------------------------------------------------------------------------------
// Issues to messages

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key as string];
  }
  return value;
}

/** A recipe's `options` are checked against that recipe's own schema. */
const recipeOptions: ChildResolver = (parent, key) => {
  if (key !== 'options' || parent === null || typeof parent !== 'object') return undefined;
  const name = (parent as { recipe?: unknown }).recipe;
  if (typeof name !== 'string' || !Object.hasOwn(RECIPES, name)) return undefined;
  return (RECIPES as Record<string, { options: Schema }>)[name]?.options;
};

function metricFormsList(): string {
  return Object.entries(METRICS)
    .map(([base, family]) => {
      switch (family.cutoff.rule) {
        case 'required':
          return `${base}@K`;
        case 'optional':
        case 'defaulted':
          return `${base}[@K]`;
        case 'none':
          return base;
      }
    })
    .join(', ');
}

/** A custom (refinement) message on one line; appends what was given and a suggestion where they help. */
function customText(message: string, value: unknown): string {
  let text = message.trim();
  if (text.includes('\n')) {
    const first = (text.split('\n')[0] ?? '').trim();
    text = /^unknown metric/.test(first) ? `${first.replace(/\.?\s*Accepted forms.*$/, '')}; expected one of: ${metricFormsList()}` : `${first} …`;
  }
  const shown = typeof value === 'string' ? value : formatValue(value);
  if (value !== undefined && (typeof value !== 'object' || value === null) && !text.includes(shown)) text += `, got ${formatValue(value)}`;
  const oneOf = /expected one of: ([^;()]+)$/.exec(text);
  if (oneOf !== null && typeof value === 'string') text += didYouMean(value, (oneOf[1] as string).split(/,\s*/));
  return text;
}

const VALUE_CODES = new Set(['invalid_type', 'too_small', 'too_big', 'not_multiple_of', 'invalid_value', 'invalid_union', 'invalid_format']);

interface Problem {
  offset: number;
  order: number;
  text: string;
}

function issueMessages(issues: readonly z.core.$ZodIssue[], data: unknown, locator: Locator): string[] {
  const problems: Problem[] = [];
  const seenValuePaths = new Set<string>();
  const add = (path: readonly PropertyKey[], text: string, keyOnly = false): void => {
    const location = locator.locate(path, keyOnly);
    problems.push({ offset: location.offset, order: problems.length, text: `${location.where}: ${formatPath(path)}: ${text}${location.suffix}` });
  };

  for (const issue of issues) {
    const path = issue.path;
    const value = valueAt(data, path);
    const schema = schemaAt(configSchema, path, data, recipeOptions);

    if (issue.code === 'unrecognized_keys') {
      const parentValue = valueAt(data, path);
      const allowed = schema === undefined ? [] : (allowedKeys(schema, parentValue) ?? []);
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        add(keyPath, `unknown key '${key}'${didYouMean(key, allowed)}`, true);
      }
      continue;
    }

    if (VALUE_CODES.has(issue.code)) {
      const pathKey = JSON.stringify(path);
      if (seenValuePaths.has(pathKey)) continue;
      seenValuePaths.add(pathKey);
    }

    switch (issue.code) {
      case 'invalid_union': {
        // A discriminated union with an unknown tag: the path ends at the tag.
        const union = issue as { note?: string; discriminator?: string; options?: unknown[] };
        if (union.note === 'No matching discriminator' || union.discriminator !== undefined) {
          const unionSchema = schemaAt(configSchema, path.slice(0, -1), data, recipeOptions);
          const tags = unionSchema === undefined ? undefined : discriminatorValues(unwrap(unionSchema).schema);
          const options = tags?.values ?? (union.options ?? []).map(String);
          const tagKey = String(path[path.length - 1] ?? tags?.key ?? 'type');
          if (value === undefined) add(path, `required key is missing; expected one of: ${options.join(', ')}`);
          else add(path, `unknown ${tagKey} ${formatValue(value)}; expected one of: ${options.join(', ')}${typeof value === 'string' ? didYouMean(value, options) : ''}`);
          break;
        }
        add(path, expectedText(schema, value, issue.message));
        break;
      }
      case 'invalid_type':
      case 'too_small':
      case 'too_big':
      case 'not_multiple_of':
        add(path, expectedText(schema, value, issue.message));
        break;
      case 'invalid_value': {
        const values = issue.values.map(String);
        const expected = values.length === 1 ? `expected ${formatValue(issue.values[0])}` : `expected one of: ${values.join(', ')}`;
        if (value === undefined) add(path, `required key is missing; ${expected}`);
        else add(path, `${expected}, got ${formatValue(value)}${typeof value === 'string' ? didYouMean(value, values) : ''}`);
        break;
      }
      case 'invalid_format': {
        const custom = !/^Invalid/.test(issue.message);
        const expected = custom ? issue.message : issue.format === 'regex' && 'pattern' in issue ? `a string matching ${String(issue.pattern)}` : `a valid ${issue.format}`;
        add(path, `expected ${expected}, got ${formatValue(value)}`);
        break;
      }
      case 'custom':
        add(path, customText(issue.message, value));
        break;
      default:
        add(path, value === undefined ? issue.message : `${issue.message}, got ${formatValue(value)}`);
    }
  }

  const ordered = [...problems].sort((a, b) => (a.offset === b.offset ? a.order - b.order : a.offset < b.offset ? -1 : 1));
  return [...new Set(ordered.map((p) => p.text))];
}

function expectedText(schema: Schema | undefined, value: unknown, fallback: string): string {
  const expected = schema === undefined ? fallback.replace(/^Invalid input: expected /, '').replace(/, received \w+$/, '') : describeExpected(schema);
  if (value === undefined) return `required key is missing; expected ${expected}`;
  return `expected ${expected}, got ${formatValue(value)}`;
}
