/**
 * The teacher's outputs, cached by content hash, so that a second epoch, a resumed run or a
 * second student trained from the same teacher does not run the teacher again.
 *
 *   key    SHA-256 of what the teacher read: `embed\0<side>\0<input type>\0<text>` for an
 *          embedding, `pair\0<query>\0<document>` for a cross-encoder score
 *   value  Float32Array: the embedding (width D), or the score (width 1)
 *
 * On disk a cache is a directory of Arrow IPC files (`part-NNNNNN.arrow`, each written
 * atomically, never rewritten): columns `key` (Utf8, hex) and `value`
 * (FixedSizeList<Float32>[D]), schema metadata `kiln.teacher` (the teacher's fingerprint: a
 * hash of its weights and configuration) and `kiln.width`. A distillation run keeps its cache
 * in `<run>/teacher-cache/` and flushes the entries it computed at every checkpoint; on start
 * it reads every part of every run in the runs root whose fingerprint matches, so a second
 * student reuses what the first one computed. A part with another fingerprint or width is
 * skipped, never mixed in.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Field, FixedSizeList, Float32, makeData, RecordBatch, Schema, Struct, Table, tableFromIPC, tableToIPC, Utf8, vectorFromArray, type Data, type TypeMap } from 'apache-arrow';

import { writeFileAtomic } from '../util/atomic-write.js';

export const TEACHER_CACHE_DIR = 'teacher-cache';
const META_TEACHER = 'kiln.teacher';
const META_WIDTH = 'kiln.width';

export function embeddingKey(side: string, inputType: string, text: string): string {
  return createHash('sha256').update(`embed\u0000${side}\u0000${inputType}\u0000${text}`).digest('hex');
}

export function pairKey(query: string, document: string): string {
  return createHash('sha256').update(`pair\u0000${query}\u0000${document}`).digest('hex');
}

export class TeacherCache {
  readonly #values = new Map<string, Float32Array>();
  /** Keys computed in this process and not yet written. */
  #pending: string[] = [];
  hits = 0;
  misses = 0;
  /** Entries read from earlier parts (this run's or other runs'). */
  loaded = 0;

  constructor(
    readonly fingerprint: string,
    readonly width: number,
    /** This run's cache directory (`<run>/teacher-cache`), or null for a cache that lives in memory only. */
    readonly directory: string | null,
  ) {}

  get size(): number {
    return this.#values.size;
  }

  /**
   * The values of `keys`, computing the missing ones with `compute` (called once, with the
   * indices of the misses, returning their values row-major) and remembering them.
   */
  lookup(keys: readonly string[], compute: (missing: number[]) => Float32Array): Float32Array {
    const out = new Float32Array(keys.length * this.width);
    const missing: number[] = [];
    keys.forEach((key, i) => {
      const value = this.#values.get(key);
      if (value === undefined) missing.push(i);
      else out.set(value, i * this.width);
    });
    this.hits += keys.length - missing.length;
    if (missing.length > 0) {
      // A key repeated within one call is computed once.
      const unique: number[] = [];
      const seen = new Set<string>();
      for (const i of missing) {
        if (seen.has(keys[i]!)) continue;
        seen.add(keys[i]!);
        unique.push(i);
      }
      const computed = compute(unique);
      if (computed.length !== unique.length * this.width) throw new Error(`teacher cache: expected ${unique.length} × ${this.width} values, got ${computed.length}`);
      unique.forEach((i, r) => {
        const value = computed.slice(r * this.width, (r + 1) * this.width);
        this.#values.set(keys[i]!, value);
        this.#pending.push(keys[i]!);
      });
      this.misses += unique.length;
      for (const i of missing) out.set(this.#values.get(keys[i]!)!, i * this.width);
    }
    return out;
  }

  /** Adds values computed elsewhere (an exported teacher's, before training); they are written at the next flush. */
  seed(entries: ReadonlyMap<string, Float32Array>): void {
    for (const [key, value] of entries) {
      if (value.length !== this.width) throw new Error(`teacher cache: a value of width ${value.length}, expected ${this.width}`);
      if (this.#values.has(key)) continue;
      this.#values.set(key, value);
      this.#pending.push(key);
    }
  }

  /** Reads every matching part under `<root>/*\/teacher-cache/`; returns how many entries it added. */
  loadFromRuns(root: string): number {
    if (!existsSync(root)) return 0;
    let added = 0;
    for (const run of readdirSync(root, { withFileTypes: true })) {
      if (!run.isDirectory()) continue;
      const dir = join(root, run.name, TEACHER_CACHE_DIR);
      if (!existsSync(dir)) continue;
      for (const part of readdirSync(dir).filter((f) => /^part-\d+\.arrow$/.test(f)).sort()) added += this.#loadPart(join(dir, part));
    }
    this.loaded += added;
    return added;
  }

  #loadPart(path: string): number {
    let table: Table;
    try {
      table = tableFromIPC(readFileSync(path));
    } catch {
      return 0; // not ours, or unreadable: the teacher recomputes what it would have held
    }
    if (table.schema.metadata.get(META_TEACHER) !== this.fingerprint || Number(table.schema.metadata.get(META_WIDTH)) !== this.width) return 0;
    const keys = table.getChild('key');
    const values = table.getChild('value');
    if (keys === null || values === null) return 0;
    let added = 0;
    let row = 0;
    for (const data of values.data) {
      const child = data.children[0] as Data<Float32>;
      const base = data.offset * this.width + child.offset;
      for (let r = 0; r < data.length; r++, row++) {
        const key = keys.get(row) as string;
        if (this.#values.has(key)) continue;
        this.#values.set(key, child.values.slice(base + r * this.width, base + (r + 1) * this.width));
        added++;
      }
    }
    return added;
  }

  /** Writes the entries computed since the last flush as one new part (atomically); returns its path, or null if nothing was new. */
  flush(): string | null {
    if (this.directory === null || this.#pending.length === 0) return null;
    mkdirSync(this.directory, { recursive: true });
    const existing = readdirSync(this.directory).filter((f) => /^part-\d+\.arrow$/.test(f)).sort();
    const next = existing.length === 0 ? 1 : Number(/\d+/.exec(existing.at(-1)!)![0]) + 1;
    const path = join(this.directory, `part-${String(next).padStart(6, '0')}.arrow`);
    const keys = this.#pending;
    const flat = new Float32Array(keys.length * this.width);
    keys.forEach((key, i) => flat.set(this.#values.get(key)!, i * this.width));
    const schema = new Schema(
      [new Field('key', new Utf8(), false), new Field('value', new FixedSizeList(this.width, new Field('item', new Float32(), false)), false)],
      new Map([
        [META_TEACHER, this.fingerprint],
        [META_WIDTH, String(this.width)],
      ]),
    );
    const valueType = schema.fields[1]!.type as FixedSizeList<Float32>;
    const children: Data[] = [
      vectorFromArray(keys, new Utf8()).data[0]!,
      makeData({ type: valueType, length: keys.length, nullCount: 0, child: makeData({ type: new Float32(), length: flat.length, nullCount: 0, data: flat }) }),
    ];
    const batch = new RecordBatch(schema, makeData({ type: new Struct<TypeMap>(schema.fields), length: keys.length, nullCount: 0, children }));
    writeFileAtomic(path, [tableToIPC(new Table([batch]), 'file')]);
    this.#pending = [];
    return path;
  }
}
