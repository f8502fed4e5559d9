/**
 * The data layer's seeded pseudo-random generator: Mulberry32 (Tommy Ettinger, 2017), a
 * 32-bit-state generator with a full 2^32 period that passes gjrand/PractRand's quick tests;
 * plenty for shuffling datasets and drawing negatives, and its whole state is one uint32, so a
 * training run can save it and resume bit-exactly. It is NOT cryptographic.
 *
 * Every data order in Kiln (shuffles, buckets, labelled negatives) is a pure function of a
 * seed through this generator; nothing reads Math.random. Independent streams for different
 * purposes are derived with `Rng.derive(seed, 'purpose')` (FNV-1a of the purpose string mixed
 * into the seed), so adding a new consumer never shifts the draws of an existing one.
 */

/** FNV-1a 32-bit hash of a string (UTF-16 code units). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Murmur3's 32-bit finaliser: spreads every input bit over the output. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer, got ${seed}`);
}

export class Rng {
  #state: number;

  /** A generator seeded with an integer (any safe integer; it is reduced to 32 bits). */
  constructor(seed: number) {
    checkSeed(seed);
    // Fold the high bits in so seeds ≥ 2^32 are not aliased onto their low 32 bits.
    this.#state = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32)));
  }

  /** A generator for one purpose, independent of other purposes under the same seed. */
  static derive(seed: number, purpose: string): Rng {
    checkSeed(seed);
    const rng = new Rng(seed);
    rng.#state = mix32(rng.#state ^ fnv1a(purpose));
    return rng;
  }

  /** A generator that continues from a saved `state()`. */
  static fromState(state: number): Rng {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new Error(`Rng state must be a uint32, got ${state}`);
    const rng = new Rng(0);
    rng.#state = state;
    return rng;
  }

  /** The whole generator state (a uint32); `Rng.fromState(s)` resumes the same sequence. */
  state(): number {
    return this.#state;
  }

  /** The next uint32 (Mulberry32). */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n), for 1 ≤ n ≤ 2^32 (multiply-shift; bias < n / 2^32, negligible here). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new Error(`Rng.int(n): n must be an integer in [1, 2^32], got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** 0..n-1 in a random order. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}
