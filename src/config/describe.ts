/**
 * Reading zod (v4) schemas back: what a schema accepts in words ("an integer >= 1", "one of:
 * fp32, bf16"), its default and description, and the sub-schema at a key path. Used for error
 * messages (src/config/load.ts) and the generated reference (src/config/docs.ts).
 */
import type { z } from 'zod';

export type Schema = z.core.$ZodType;

interface AnyDef {
  type: string;
  [key: string]: unknown;
}

function defOf(schema: Schema): AnyDef {
  return schema._zod.def as unknown as AnyDef;
}

function descriptionOf(schema: Schema): string | undefined {
  const d = (schema as { description?: unknown }).description;
  return typeof d === 'string' ? d : undefined;
}

/** What a schema looks like once its wrappers (optional, default, nullable, …) are peeled off. */
export interface Unwrapped {
  /** The innermost schema. */
  schema: Schema;
  optional: boolean;
  nullable: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
  /** The outermost `.describe()` text. */
  description: string | undefined;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional', 'pipe', 'lazy']);

export function unwrap(schema: Schema): Unwrapped {
  const out: Unwrapped = { schema, optional: false, nullable: false, hasDefault: false, defaultValue: undefined, description: undefined };
  let current = schema;
  for (let guard = 0; guard < 64; guard++) {
    out.description ??= descriptionOf(current);
    const def = defOf(current);
    if (!WRAPPERS.has(def.type)) break;
    switch (def.type) {
      case 'optional':
        out.optional = true;
        break;
      case 'nullable':
        out.nullable = true;
        break;
      case 'default':
      case 'prefault':
        if (!out.hasDefault) {
          out.hasDefault = true;
          out.defaultValue = def.defaultValue;
        }
        break;
    }
    let inner: unknown;
    if (def.type === 'pipe') inner = def.in;
    else if (def.type === 'lazy') inner = (def.getter as () => unknown)();
    else inner = def.innerType;
    if (inner === undefined) break;
    current = inner as Schema;
  }
  out.schema = current;
  return out;
}

function checkDefs(schema: Schema): Record<string, unknown>[] {
  const checks = (defOf(schema).checks ?? []) as { _zod: { def: Record<string, unknown> } }[];
  return checks.map((c) => c._zod.def);
}

function numberText(value: unknown): string {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : JSON.stringify(value);
}

function describeNumber(schema: Schema): string {
  let integer = false;
  const bounds: string[] = [];
  for (const check of checkDefs(schema)) {
    switch (check.check) {
      case 'number_format':
        if (typeof check.format === 'string' && /int/.test(check.format)) integer = true;
        break;
      case 'greater_than':
        bounds.unshift(`${check.inclusive === true ? '>=' : '>'} ${numberText(check.value)}`);
        break;
      case 'less_than':
        bounds.push(`${check.inclusive === true ? '<=' : '<'} ${numberText(check.value)}`);
        break;
      case 'multiple_of':
        bounds.push(`a multiple of ${numberText(check.value)}`);
        break;
    }
  }
  const base = integer ? 'an integer' : 'a number';
  return bounds.length === 0 ? base : `${base} ${bounds.join(' and ')}`;
}

function describeLength(schema: Schema, noun: string): string {
  let min: number | undefined;
  let max: number | undefined;
  for (const check of checkDefs(schema)) {
    if (check.check === 'min_length' && typeof check.minimum === 'number') min = check.minimum;
    if (check.check === 'max_length' && typeof check.maximum === 'number') max = check.maximum;
    if (check.check === 'length_equals' && typeof check.length === 'number') min = max = check.length;
  }
  const plural = (n: number): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
  if (min !== undefined && max !== undefined) return min === max ? `exactly ${plural(min)}` : `${min} to ${plural(max)}`;
  if (min !== undefined && min > 0) return `at least ${plural(min)}`;
  if (max !== undefined) return `at most ${plural(max)}`;
  return '';
}

function quoteLiteral(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** The values a discriminated union's options take for its discriminator, or undefined. */
export function discriminatorValues(schema: Schema): { key: string; values: string[] } | undefined {
  const def = defOf(schema);
  if (def.type !== 'union' || typeof def.discriminator !== 'string') return undefined;
  const key = def.discriminator;
  const values: string[] = [];
  for (const option of def.options as Schema[]) {
    const shape = objectShape(unwrap(option).schema);
    const field = shape?.[key];
    if (field === undefined) continue;
    for (const v of literalValues(unwrap(field).schema) ?? []) values.push(String(v));
  }
  return { key, values };
}

function literalValues(schema: Schema): unknown[] | undefined {
  const def = defOf(schema);
  if (def.type === 'literal') return def.values as unknown[];
  if (def.type === 'enum') return Object.values(def.entries as Record<string, unknown>);
  return undefined;
}

/** An object schema's shape, or undefined for other schemas. */
export function objectShape(schema: Schema): Record<string, Schema> | undefined {
  const def = defOf(schema);
  return def.type === 'object' ? (def.shape as Record<string, Schema>) : undefined;
}

/** What a schema accepts, in words, starting with an article: "an integer >= 1", "one of: fp32, bf16". */
export function describeExpected(schema: Schema): string {
  const u = unwrap(schema);
  const inner = describeInner(u.schema);
  return u.nullable ? `${inner} or null` : inner;
}

function describeInner(schema: Schema): string {
  const def = defOf(schema);
  switch (def.type) {
    case 'number':
    case 'int':
      return describeNumber(schema);
    case 'bigint':
      return 'an integer';
    case 'string': {
      const regex = checkDefs(schema).find((c) => c.format === 'regex');
      const length = describeLength(schema, 'character');
      let text = 'a string';
      if (length !== '') text += ` of ${length}`;
      if (regex !== undefined && regex.pattern instanceof RegExp) text += ` matching ${String(regex.pattern)}`;
      return text;
    }
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'undefined':
      return 'nothing';
    case 'unknown':
    case 'any':
      return 'any value';
    case 'enum':
    case 'literal': {
      const values = literalValues(schema) ?? [];
      return values.length === 1 ? quoteLiteral(values[0]) : `one of: ${values.map(String).join(', ')}`;
    }
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping';
    case 'array': {
      const length = describeLength(schema, 'item');
      return length === '' ? 'a list' : `a list of ${length}`;
    }
    case 'tuple': {
      const items = def.items as Schema[];
      const described = items.map((item) => describeExpected(item));
      const same = described.every((d) => d === described[0]);
      if (same && described[0] !== undefined) return `a list of ${items.length} items, each ${described[0]}`;
      return `a list of ${items.length} items: ${described.join('; ')}`;
    }
    case 'union': {
      const disc = discriminatorValues(schema);
      if (disc !== undefined) return `a mapping with ${disc.key}: one of ${disc.values.join(', ')}`;
      return (def.options as Schema[]).map((o) => describeExpected(o)).join(' or ');
    }
    default:
      return `a ${def.type}`;
  }
}

/** Optional hook for `schemaAt`: replaces the schema of `key` under a parent value (e.g. a recipe's own options schema). */
export type ChildResolver = (parent: unknown, key: PropertyKey, child: Schema) => Schema | undefined;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The union option a value belongs to (by discriminator, else the first object option with all its keys). */
function pickUnionOption(schema: Schema, value: unknown): Schema | undefined {
  const def = defOf(schema);
  const options = def.options as Schema[];
  if (typeof def.discriminator === 'string' && isRecord(value)) {
    const tag = value[def.discriminator];
    for (const option of options) {
      const shape = objectShape(unwrap(option).schema);
      const field = shape?.[def.discriminator];
      if (field !== undefined && (literalValues(unwrap(field).schema) ?? []).includes(tag)) return option;
    }
    return undefined;
  }
  if (isRecord(value)) {
    for (const option of options) {
      const shape = objectShape(unwrap(option).schema);
      if (shape !== undefined && Object.keys(value).every((k) => k in shape)) return option;
    }
  }
  return undefined;
}

/** The schema of one child (object key, list index, record value), or undefined. */
export function childSchema(schema: Schema, key: PropertyKey, value: unknown, resolve?: ChildResolver): Schema | undefined {
  let inner = unwrap(schema).schema;
  if (defOf(inner).type === 'union') {
    const picked = pickUnionOption(inner, value);
    if (picked === undefined) return undefined;
    inner = unwrap(picked).schema;
  }
  const def = defOf(inner);
  let child: Schema | undefined;
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, Schema>;
      child = typeof key === 'string' && Object.hasOwn(shape, key) ? shape[key] : undefined;
      break;
    }
    case 'array':
      child = def.element as Schema;
      break;
    case 'tuple':
      child = typeof key === 'number' ? (def.items as Schema[])[key] : undefined;
      break;
    case 'record':
      child = def.valueType as Schema;
      break;
  }
  if (child !== undefined && resolve !== undefined) child = resolve(value, key, child) ?? child;
  return child;
}

function valueAt(value: unknown, key: PropertyKey): unknown {
  if (Array.isArray(value) && typeof key === 'number') return value[key];
  if (isRecord(value) && typeof key === 'string') return value[key];
  return undefined;
}

/** The schema at a key path of `data` (used to pick union options and resolve hooks), or undefined. */
export function schemaAt(root: Schema, path: readonly PropertyKey[], data: unknown, resolve?: ChildResolver): Schema | undefined {
  let schema: Schema | undefined = root;
  let value = data;
  for (const key of path) {
    if (schema === undefined) return undefined;
    schema = childSchema(schema, key, value, resolve);
    value = valueAt(value, key);
  }
  return schema;
}

/** The keys an object schema (at any wrapping) allows, or undefined if it is not an object. */
export function allowedKeys(schema: Schema, value?: unknown): string[] | undefined {
  let inner = unwrap(schema).schema;
  if (defOf(inner).type === 'union') {
    const picked = pickUnionOption(inner, value);
    if (picked === undefined) return undefined;
    inner = unwrap(picked).schema;
  }
  const shape = objectShape(inner);
  return shape === undefined ? undefined : Object.keys(shape);
}
