/**
 * Commands made from a run, an evaluation or an export, are runs of their own in the store
 * beside it (`kind: eval | export`, `parentId` the source run): `running` while they work,
 * then `finished` with their numbers, or `failed` with the reason (a failed parity check).
 * A user error (a bad flag, a missing file) leaves no record: it exits 2 and writes nothing.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { RunStore, type RunKind } from './store.js';

export interface DerivedOutcome {
  /** Where the output went (an export's directory); the run's own directory when absent. */
  path?: string;
  results?: Record<string, number>;
  message?: string;
}

const stamp = (now: Date): string => now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '').replace('Z', '');

export async function withDerivedRun<T>(
  parentRunPath: string,
  kind: Extract<RunKind, 'eval' | 'export'>,
  params: Record<string, string>,
  body: () => Promise<T>,
  outcome: (result: T) => DerivedOutcome,
  isUserError: (error: unknown) => boolean,
): Promise<T> {
  const parentPath = resolve(parentRunPath);
  // Not a run: the command itself reports that, and there is nothing to attach a record to.
  if (!existsSync(join(parentPath, 'config.yaml'))) return body();
  const store = RunStore.open(dirname(parentPath));
  try {
    const parentId = basename(parentPath);
    if (!store.hasRun(parentId)) store.importDirectory(parentPath);
    const id = `${parentId}@${kind}-${stamp(new Date())}`;
    store.beginRun({ id, name: `${kind} of ${parentId}`, kind, task: null, path: parentPath, parentId, params });
    let result: T;
    try {
      result = await body();
    } catch (error) {
      if (isUserError(error)) store.deleteRun(id, { force: true });
      else store.endRun(id, { status: 'failed', message: (error as Error).message });
      throw error;
    }
    const done = outcome(result);
    store.endRun(id, { status: 'finished', message: done.message ?? null, results: done.results, path: done.path, artifactsFrom: done.path });
    return result;
  } finally {
    store.close();
  }
}

/** Numeric leaves of an object as `a/b/c` keys (an export card's checks, an evaluation's tables). */
export function numericLeaves(value: unknown, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof value === 'number') {
    if (prefix !== '') out[prefix] = value;
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) Object.assign(out, numericLeaves(inner, prefix === '' ? key : `${prefix}/${key}`));
  }
  return out;
}
