/**
 * `--set key.path=value` overrides, applied to the parsed YAML document before validation so
 * that the result is validated (and reported) exactly like the file itself.
 *
 *   key.path  dotted keys with list indices as `[i]` or `.i`: `train.lr`, `data.eval[0].max_queries`,
 *             `data.eval.0.max_queries`
 *   value     a YAML scalar or flow collection: `3e-4` (number), `null`, `true`, `bf16`,
 *             `'{text}'`, `[mrr, recall@5]`, `{title: "t: {text}"}`; empty = null
 */
import { Document, isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq, parseDocument, type Node } from 'yaml';

import { formatPath, formatValue } from './errors.js';

/** One segment of an override key path: `index` is true for `[i]`. */
export interface KeySegment {
  key: string;
  index: boolean;
}

/** An override that was applied: its text as given and the resolved path it set. */
export interface AppliedOverride {
  text: string;
  path: (string | number)[];
}

const KEY_PATH_HELP = 'expected dotted keys with optional [i] list indices, e.g. train.lr or data.eval[0].max_queries';

/** Parses a key path such as `data.eval[0].max_queries`; returns undefined when the syntax is wrong. */
export function parseKeyPath(text: string): KeySegment[] | undefined {
  const segments: KeySegment[] = [];
  let rest = text;
  let first = true;
  while (rest !== '') {
    let match: RegExpExecArray | null;
    if ((match = /^\[(\d+)\]/.exec(rest)) !== null && !first) {
      segments.push({ key: match[1] as string, index: true });
    } else if ((match = (first ? /^([A-Za-z0-9_-]+)/ : /^\.([A-Za-z0-9_-]+)/).exec(rest)) !== null) {
      segments.push({ key: match[1] as string, index: false });
    } else {
      return undefined;
    }
    rest = rest.slice(match[0].length);
    first = false;
  }
  return segments.length === 0 ? undefined : segments;
}

/** Splits `key.path=value` into its parts; returns a problem message when it is not of that form. */
export function splitOverride(text: string): { segments: KeySegment[]; valueText: string } | string {
  const eq = text.indexOf('=');
  if (eq < 0) return `--set ${text}: expected key.path=value`;
  const keyText = text.slice(0, eq).trim();
  const segments = parseKeyPath(keyText);
  if (segments === undefined) return `--set ${text}: bad key path '${keyText}'; ${KEY_PATH_HELP}`;
  return { segments, valueText: text.slice(eq + 1) };
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/** Drops source ranges so that nodes from an override never point at lines of the config file. */
function stripRanges(node: unknown): void {
  if (isPair(node)) {
    stripRanges(node.key);
    stripRanges(node.value);
    return;
  }
  if (!isNode(node)) return;
  (node as { range?: unknown }).range = undefined;
  if (isCollection(node)) for (const item of node.items) stripRanges(item);
}

/** Parses an override's value as a YAML scalar or flow collection. */
function parseValue(text: string, valueText: string): Node | string {
  const valueDoc = parseDocument(valueText);
  const problem = valueDoc.errors[0];
  if (problem !== undefined) return `--set ${text}: cannot parse the value as YAML: ${firstLine(problem.message)}`;
  let node = valueDoc.contents as Node | null;
  if (node === null) node = valueDoc.createNode(null) as Node;
  if (isAlias(node)) return `--set ${text}: aliases are not supported in --set values`;
  stripRanges(node);
  return node;
}

/** A null scalar (`key:` with no value) counts as absent, so a path can be created through it. */
function isAbsent(node: unknown): boolean {
  return node === undefined || node === null || (isScalar(node) && node.value === null);
}

/**
 * Applies `overrides` (in order; later ones win) to `doc`. Returns the applied overrides with
 * their resolved paths (for locating errors) and one problem message per override that could
 * not be applied. Does not touch the document for a failed override.
 */
export function applyOverrides(doc: Document, overrides: readonly string[]): { applied: AppliedOverride[]; problems: string[] } {
  const applied: AppliedOverride[] = [];
  const problems: string[] = [];
  for (const text of overrides) {
    const split = splitOverride(text);
    if (typeof split === 'string') {
      problems.push(split);
      continue;
    }
    const value = parseValue(text, split.valueText);
    if (typeof value === 'string') {
      problems.push(value);
      continue;
    }
    const result = setPath(doc, split.segments, value);
    if (typeof result === 'string') {
      problems.push(`--set ${text}: ${result}`);
      continue;
    }
    // An override replaces whatever earlier overrides set at or below its path.
    const key = result.map(String);
    for (let i = applied.length - 1; i >= 0; i--) {
      const earlier = applied[i] as AppliedOverride;
      if (key.length <= earlier.path.length && key.every((k, j) => String(earlier.path[j]) === k)) applied.splice(i, 1);
    }
    applied.push({ text, path: result });
  }
  return { applied, problems };
}

/** Builds the value for a path that does not exist yet, from segment `from` on. */
function buildMissing(doc: Document, segments: readonly KeySegment[], from: number, value: Node, where: (string | number)[]): Node | string {
  let built: unknown = value;
  for (let i = segments.length - 1; i >= from; i--) {
    const segment = segments[i] as KeySegment;
    if (segment.index) {
      if (segment.key !== '0') {
        return `${formatPath([...where, ...segments.slice(from, i).map((s) => (s.index ? Number(s.key) : s.key))])} does not exist, so only index 0 can be set`;
      }
      built = [built];
    } else {
      built = { [segment.key]: built };
    }
  }
  const node = doc.createNode(built) as Node;
  return node;
}

/** Sets `segments` to `value` in `doc`; returns the resolved path, or a problem message. */
function setPath(doc: Document, segments: readonly KeySegment[], value: Node): (string | number)[] | string {
  const resolved: (string | number)[] = [];
  let parent: unknown = undefined;
  let node: unknown = doc.contents;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as KeySegment;
    if (isAlias(node)) node = node.resolve(doc);
    if (isAbsent(node)) {
      // The rest of the path does not exist: create it under the last existing collection.
      const built = buildMissing(doc, segments, i, value, resolved);
      if (typeof built === 'string') return built;
      const last = resolved[resolved.length - 1];
      if (parent === undefined) doc.contents = built;
      else (parent as { set(key: unknown, v: unknown): void }).set(last, built);
      for (let j = i; j < segments.length; j++) {
        const s = segments[j] as KeySegment;
        resolved.push(s.index ? Number(s.key) : s.key);
      }
      return resolved;
    }
    if (isSeq(node)) {
      if (!/^\d+$/.test(segment.key)) return `${formatPath(resolved)} is a list; address its items by index, e.g. ${formatPath([...resolved, 0])}`;
      const index = Number(segment.key);
      if (index > node.items.length) return `${formatPath(resolved)} has ${node.items.length} item(s); index ${index} is out of range`;
      resolved.push(index);
      parent = node;
      node = index < node.items.length ? node.items[index] : undefined;
    } else if (isMap(node)) {
      if (segment.index) return `${formatPath(resolved)} is a mapping, not a list`;
      resolved.push(segment.key);
      parent = node;
      node = node.get(segment.key, true);
    } else {
      const scalar = isScalar(node) ? node.value : node;
      return `${formatPath(resolved)} is ${formatValue(scalar)}, not a mapping or list, so it has no '${segment.key}'`;
    }
  }
  const last = resolved[resolved.length - 1];
  if (parent === undefined) doc.contents = value;
  else (parent as { set(key: unknown, v: unknown): void }).set(last, value);
  return resolved;
}
