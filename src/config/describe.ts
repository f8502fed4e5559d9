/**
 * Reading config schemas back through their JSON Schema: what a schema accepts in words ("an
 * integer >= 1", "one of: fp32, bf16"), its default and description, and the sub-schema at a
 * key path. Used for error messages (src/config/load.ts), the generated reference and the
 * published JSON Schema (src/config/docs.ts).
 *
 * Every zod schema is first converted with zod's public `z.toJSONSchema()` (`toJsonSchema`
 * below) and only the JSON Schema is read, so nothing here depends on zod's internals. The
 * conversion describes a config as written (`io: 'input'`): keys with a default are optional,
 * and `.describe()` texts become `description`. Refinements (`.refine`, `.superRefine`) have no
 * JSON Schema form and are left out; docs.ts states the cross-field rules in words.
 */
import { z } from 'zod';

/** One node of a JSON Schema (draft 2020-12), as `z.toJSONSchema()` writes it. */
export type JsonSchema = z.core.JSONSchema.JSONSchema;

/** A zod schema, or a node of the JSON Schema made from one: every function here takes either. */
export type Schema = z.core.$ZodType | JsonSchema;

const converted = new WeakMap<z.core.$ZodType, JsonSchema>();

/**
 * zod writes `.int()`'s implicit safe-integer range as bounds; they are noise for a reader
 * ("an integer >= 1 and <= 9007199254740991") and for editors, so they are dropped.
 */
function dropSafeIntegerBounds(json: JsonSchema): void {
  if (json.maximum === Number.MAX_SAFE_INTEGER) delete json.maximum;
  if (json.minimum === Number.MIN_SAFE_INTEGER) delete json.minimum;
}

/**
 * The JSON Schema of a zod schema, for the config as written (cached; treat it as read-only).
 * `io: 'input'` because people write configs, and every reader here talks to them: the output
 * side would make every key with a default required. `unrepresentable: 'any'`: a type with no JSON Schema form (a transform's output, a custom
 * type) becomes `{}` ("any value") instead of failing the reference, since zod still checks it
 * at load time. `cycles: 'throw'`: the readers here walk one inline tree and follow no `$ref`.
 */
export function toJsonSchema(schema: z.core.$ZodType): JsonSchema {
  let json = converted.get(schema);
  if (json === undefined) {
    json = z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io: 'input',
      unrepresentable: 'any',
      cycles: 'throw',
      reused: 'inline',
      override: ({ jsonSchema }) => dropSafeIntegerBounds(jsonSchema),
    }) as JsonSchema;
    converted.set(schema, json);
  }
  return json;
}

/** `schema` as a JSON Schema node (a zod schema is converted first). */
export function jsonNode(schema: Schema): JsonSchema {
  return schema instanceof z.core.$ZodType ? toJsonSchema(schema) : schema;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A subschema slot (`items`, `additionalProperties`, …) as a node; `true`/`false` and absent slots give undefined. */
function nodeOf(value: unknown): JsonSchema | undefined {
  return isRecord(value) ? (value as JsonSchema) : undefined;
}

/** What a schema looks like once `nullable` (an `anyOf` with `{type: 'null'}`) is peeled off. */
export interface Unwrapped {
  /** The inner schema. */
  schema: JsonSchema;
  nullable: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
  /** The outermost description (a `.describe()` inside `.nullable()` lands on the inner schema). */
  description: string | undefined;
}

/** `schema` with its default, description and nullability read off, and the nullable union peeled. */
export function unwrap(schema: Schema): Unwrapped {
  const node = jsonNode(schema);
  const out: Unwrapped = {
    schema: node,
    nullable: false,
    hasDefault: Object.hasOwn(node, 'default'),
    defaultValue: node.default,
    description: node.description,
  };
  const options = node.anyOf;
  if (options !== undefined && options.length > 1 && options.some(isNullType)) {
    const rest = options.filter((o) => !isNullType(o));
    out.nullable = true;
    out.schema = rest.length === 1 ? (rest[0] as JsonSchema) : { anyOf: rest };
    out.description ??= out.schema.description;
  }
  return out;
}

function isNullType(node: JsonSchema): boolean {
  return node.type === 'null' && Object.keys(node).every((k) => k === 'type' || k === 'description');
}

/** The options of a union (`anyOf`, or `oneOf` for discriminated unions), or undefined. */
function unionOptions(node: JsonSchema): JsonSchema[] | undefined {
  return node.oneOf ?? node.anyOf;
}

/** An object schema's properties, or undefined for other schemas (a record has none). */
export function propertiesOf(schema: Schema): Record<string, JsonSchema> | undefined {
  const node = jsonNode(schema);
  if (node.properties === undefined) return undefined;
  const out: Record<string, JsonSchema> = {};
  for (const [key, child] of Object.entries(node.properties)) out[key] = nodeOf(child) ?? {};
  return out;
}

/** The schema of a list's items, or undefined for other schemas (a tuple's `prefixItems` included). */
export function listItems(schema: Schema): JsonSchema | undefined {
  const node = jsonNode(schema);
  return node.type === 'array' && node.prefixItems === undefined ? nodeOf(node.items) : undefined;
}

/** The values a `const` or `enum` schema allows, or undefined for other schemas. */
export function literalValues(schema: Schema): unknown[] | undefined {
  const node = unwrap(schema).schema;
  if (Object.hasOwn(node, 'const')) return [node.const];
  return node.enum;
}

/**
 * A discriminated union's key and the values its options take for it, or undefined: the first
 * property that every option requires and pins to literal values.
 */
export function discriminatorValues(schema: Schema): { key: string; values: string[] } | undefined {
  const options = unionOptions(jsonNode(schema))?.map((o) => unwrap(o).schema);
  const first = options?.[0];
  if (options === undefined || first === undefined) return undefined;
  for (const key of Object.keys(propertiesOf(first) ?? {})) {
    const values: string[] = [];
    const pinned = options.every((option) => {
      const field = propertiesOf(option)?.[key];
      const literals = field === undefined ? undefined : literalValues(field);
      if (literals === undefined || !(option.required ?? []).includes(key)) return false;
      values.push(...literals.map(String));
      return true;
    });
    if (pinned) return { key, values };
  }
  return undefined;
}

function numberText(value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

function describeNumber(node: JsonSchema): string {
  const bounds: string[] = [];
  if (typeof node.exclusiveMinimum === 'number') bounds.push(`> ${numberText(node.exclusiveMinimum)}`);
  if (node.minimum !== undefined) bounds.push(`>= ${numberText(node.minimum)}`);
  if (typeof node.exclusiveMaximum === 'number') bounds.push(`< ${numberText(node.exclusiveMaximum)}`);
  if (node.maximum !== undefined) bounds.push(`<= ${numberText(node.maximum)}`);
  if (node.multipleOf !== undefined) bounds.push(`a multiple of ${numberText(node.multipleOf)}`);
  const base = node.type === 'integer' ? 'an integer' : 'a number';
  return bounds.length === 0 ? base : `${base} ${bounds.join(' and ')}`;
}

function describeLength(min: number | undefined, max: number | undefined, noun: string): string {
  const plural = (n: number): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
  if (min !== undefined && max !== undefined) return min === max ? `exactly ${plural(min)}` : `${min} to ${plural(max)}`;
  if (min !== undefined && min > 0) return `at least ${plural(min)}`;
  if (max !== undefined) return `at most ${plural(max)}`;
  return '';
}

function describeString(node: JsonSchema): string {
  // Several regexes on one string become an `allOf` of patterns.
  const patterns = [node.pattern, ...(node.allOf ?? []).map((part) => part.pattern)].filter((p): p is string => p !== undefined);
  const length = describeLength(node.minLength, node.maxLength, 'character');
  let text = 'a string';
  if (length !== '') text += ` of ${length}`;
  if (patterns.length > 0) text += ` matching ${patterns.map((p) => `/${p}/`).join(' and ')}`;
  return text;
}

function quoteLiteral(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** What a schema accepts, in words, starting with an article: "an integer >= 1", "one of: fp32, bf16". */
export function describeExpected(schema: Schema): string {
  const u = unwrap(schema);
  const inner = describeInner(u.schema);
  return u.nullable ? `${inner} or null` : inner;
}

function describeInner(node: JsonSchema): string {
  const literals = literalValues(node);
  if (literals !== undefined) return literals.length === 1 ? quoteLiteral(literals[0]) : `one of: ${literals.map(String).join(', ')}`;
  const options = unionOptions(node);
  if (options !== undefined) {
    const disc = discriminatorValues(node);
    if (disc !== undefined) return `a mapping with ${disc.key}: one of ${disc.values.join(', ')}`;
    return options.map((o) => describeExpected(o)).join(' or ');
  }
  switch (node.type) {
    case 'number':
    case 'integer':
      return describeNumber(node);
    case 'string':
      return describeString(node);
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'object':
      return 'a mapping';
    case 'array': {
      if (node.prefixItems !== undefined) return describeTuple(node.prefixItems.map((item) => nodeOf(item) ?? {}));
      const length = describeLength(node.minItems, node.maxItems, 'item');
      return length === '' ? 'a list' : `a list of ${length}`;
    }
    case undefined: {
      // `{}` (z.unknown, or an unrepresentable type) accepts anything; `{not: {}}` (z.never) nothing.
      const negatesEverything = isRecord(node.not) && Object.keys(node.not).length === 0;
      return negatesEverything ? 'nothing' : 'any value';
    }
    default:
      return `a ${Array.isArray(node.type) ? node.type.join(' or ') : node.type}`;
  }
}

function describeTuple(items: readonly JsonSchema[]): string {
  const described = items.map((item) => describeExpected(item));
  const same = described.every((d) => d === described[0]);
  if (same && described[0] !== undefined) return `a list of ${items.length} items, each ${described[0]}`;
  return `a list of ${items.length} items: ${described.join('; ')}`;
}

/** Optional hook for `schemaAt`: replaces the schema of `key` under a parent value (e.g. a recipe's own options schema). */
export type ChildResolver = (parent: unknown, key: PropertyKey, child: Schema) => Schema | undefined;

/**
 * The union option a value belongs to: by discriminator; for a mapping, else the first object
 * option that has all its keys; for a list, the first list option.
 */
function pickUnionOption(node: JsonSchema, value: unknown): JsonSchema | undefined {
  const options = unionOptions(node) ?? [];
  const disc = discriminatorValues(node);
  if (disc !== undefined) {
    if (!isRecord(value)) return undefined;
    const tag = value[disc.key];
    return options.find((option) => {
      const field = propertiesOf(unwrap(option).schema)?.[disc.key];
      return field !== undefined && (literalValues(field) ?? []).includes(tag);
    });
  }
  if (isRecord(value)) {
    return options.find((option) => {
      const properties = propertiesOf(unwrap(option).schema);
      return properties !== undefined && Object.keys(value).every((k) => Object.hasOwn(properties, k));
    });
  }
  if (Array.isArray(value)) return options.find((option) => unwrap(option).schema.type === 'array');
  return undefined;
}

/** `schema` with nullable peeled off and, for a union, the option `value` belongs to; undefined if none fits. */
function resolvedNode(schema: Schema, value: unknown): JsonSchema | undefined {
  const inner = unwrap(schema).schema;
  if (unionOptions(inner) === undefined) return inner;
  const picked = pickUnionOption(inner, value);
  return picked === undefined ? undefined : unwrap(picked).schema;
}

/** The schema of one child (object key, list index, record value), or undefined. */
export function childSchema(schema: Schema, key: PropertyKey, value: unknown, resolve?: ChildResolver): JsonSchema | undefined {
  const node = resolvedNode(schema, value);
  if (node === undefined) return undefined;
  let child: Schema | undefined;
  if (node.type === 'object') {
    const properties = propertiesOf(node);
    if (properties !== undefined && typeof key === 'string' && Object.hasOwn(properties, key)) child = properties[key];
    else child = nodeOf(node.additionalProperties); // a record's value schema; undefined for a strict object
  } else if (node.type === 'array') {
    if (node.prefixItems !== undefined) child = typeof key === 'number' ? nodeOf(node.prefixItems[key]) : undefined;
    else child = listItems(node);
  }
  if (child !== undefined && resolve !== undefined) child = resolve(value, key, child) ?? child;
  return child === undefined ? undefined : jsonNode(child);
}

function valueAt(value: unknown, key: PropertyKey): unknown {
  if (Array.isArray(value) && typeof key === 'number') return value[key];
  if (isRecord(value) && typeof key === 'string') return value[key];
  return undefined;
}

/** The schema at a key path of `data` (used to pick union options and resolve hooks), or undefined. */
export function schemaAt(root: Schema, path: readonly PropertyKey[], data: unknown, resolve?: ChildResolver): JsonSchema | undefined {
  let schema: JsonSchema | undefined = jsonNode(root);
  let value = data;
  for (const key of path) {
    if (schema === undefined) return undefined;
    schema = childSchema(schema, key, value, resolve);
    value = valueAt(value, key);
  }
  return schema;
}

/** The keys an object schema (nullable, or a union option picked by `value`) allows, or undefined if it is not an object. */
export function allowedKeys(schema: Schema, value?: unknown): string[] | undefined {
  const node = resolvedNode(schema, value);
  const properties = node === undefined ? undefined : propertiesOf(node);
  return properties === undefined ? undefined : Object.keys(properties);
}
