/**
 * Lexical rankers over a retrieval corpus, by name: `bm25` (./bm25.ts) and `tfidf_char`
 * (./tfidf-char.ts). Both score plain strings; this file decides WHICH strings a document is.
 *
 * Fields. A taxonomy document has a `text` (an ESCO concept's preferred label) and `labels` (its
 * alternative labels: "software developer" is also "application developer", "programmer", …).
 * `fields` chooses which of them are indexed; the default is both, because a vacancy title or a
 * job-ad phrase names a concept by any of its labels (BM25 over preferred labels alone reaches
 * JobBERT MRR 24.1; over labels and alt labels, 31.5).
 *
 * Match. A document with several labels is scored one of two ways:
 *
 *     best:    score(q, d) = max_{ℓ ∈ labels(d)} s(q, ℓ)         each label indexed as its own unit
 *     joined:  score(q, d) = s(q, ℓ_1 ⊕ ℓ_2 ⊕ … ⊕ ℓ_n)           the labels concatenated into one text
 *
 * where s is the underlying ranker (BM25 or TF-IDF cosine). The default is `best`. Why: labels
 * are alternatives, not parts of one text. Joined, a concept with forty alt labels becomes a long
 * document whose length normalisation (BM25's b, TF-IDF's L2 norm) dilutes an exact match on one
 * of its names, while the words repeated across its labels inflate term frequencies; a concept
 * with one label is favoured or penalised for how many synonyms ESCO happens to list. Best-label
 * scoring compares the query with each name on equal terms, as a human matching a title to a
 * taxonomy does. Statistics (BM25's idf and average length, TF-IDF's idf) are then computed over
 * labels. Measured on the validation splits (RESULTS.md), `best` is ahead on every split for
 * both rankers.
 *
 * `candidates` is what rank fusion consumes: the documents with a positive score, best first,
 * at most `window` of them (a document sharing nothing with the query is not retrieved at all,
 * rather than ranked among ties).
 */
import { scoreMatrix, scoreRow, type RowScorer } from './score-rows.js';
import { Bm25Index } from './bm25.js';
import { topK } from './rank.js';
import { CharTfidfIndex } from './tfidf-char.js';
import type { CorpusDocument } from '../data/types.js';

/** Which document strings are indexed. */
export type LexicalField = 'text' | 'labels';
/** How a document's labels combine (see the header). */
export type LabelMatch = 'best' | 'joined';

export interface LexicalSettings {
  readonly fields: readonly LexicalField[];
  readonly match: LabelMatch;
}

export const DEFAULT_LEXICAL_SETTINGS: LexicalSettings = Object.freeze({ fields: Object.freeze(['text', 'labels'] as LexicalField[]), match: 'best' as const });

export interface LexicalRankerSpec {
  readonly description: string;
  create(texts: readonly string[]): RowScorer;
}

/** The lexical rankers by config name. */
export const LEXICAL_RANKERS = {
  bm25: { description: 'Okapi BM25 over word tokens (k1 1.2, b 0.75; src/eval/bm25.ts)', create: (texts) => new Bm25Index(texts) },
  tfidf_char: { description: 'character n-gram TF-IDF, word-bounded 3–5-grams, sublinear tf, cosine (src/eval/tfidf-char.ts)', create: (texts) => new CharTfidfIndex(texts) },
} as const satisfies Record<string, LexicalRankerSpec>;

export type LexicalName = keyof typeof LEXICAL_RANKERS;
export const LEXICAL_NAMES = Object.keys(LEXICAL_RANKERS) as [LexicalName, ...LexicalName[]];

/** A retrieval candidate list: document indices best first and their scores. */
export interface Candidates {
  readonly docs: Int32Array;
  readonly scores: Float32Array;
}

/** The strings of one document under `fields`, duplicates removed (first occurrence kept). */
export function documentStrings(doc: CorpusDocument, fields: readonly LexicalField[]): string[] {
  const out: string[] = [];
  for (const field of fields) {
    if (field === 'text') out.push(doc.text);
    else out.push(...(doc.labels ?? []));
  }
  return [...new Set(out.filter((s) => s.trim() !== ''))];
}

export class LexicalRanker {
  readonly numDocs: number;
  readonly #scorer: RowScorer;
  /** best: unit (label) → document; null when units are documents (joined). */
  readonly #unitDoc: Int32Array | null;
  readonly #unitScores: Float32Array;
  /** Scratch row for `candidates` (the service calls it once per request). */
  readonly #docScores: Float32Array;
  /** Scratch list of the documents a sparse query touched. */
  readonly #touchedDocs: Int32Array;

  constructor(
    readonly name: LexicalName,
    docs: readonly CorpusDocument[],
    readonly settings: LexicalSettings = DEFAULT_LEXICAL_SETTINGS,
  ) {
    if (!Object.hasOwn(LEXICAL_RANKERS, name)) throw new Error(`unknown lexical ranker '${name}'; expected one of ${LEXICAL_NAMES.join(', ')}`);
    if (settings.fields.length === 0) throw new Error('lexical fields: expected at least one of text, labels');
    this.numDocs = docs.length;
    const strings = docs.map((d) => documentStrings(d, settings.fields));
    if (settings.match === 'joined') {
      // Labels joined with '; ' so no word (or word-bounded n-gram) spans two labels.
      this.#scorer = LEXICAL_RANKERS[name].create(strings.map((s) => s.join('; ')));
      this.#unitDoc = null;
    } else {
      const units: string[] = [];
      const unitDoc: number[] = [];
      strings.forEach((labels, doc) => {
        for (const label of labels) {
          units.push(label);
          unitDoc.push(doc);
        }
      });
      this.#scorer = LEXICAL_RANKERS[name].create(units);
      this.#unitDoc = Int32Array.from(unitDoc);
    }
    this.#unitScores = new Float32Array(this.#unitDoc === null ? 0 : this.#scorer.numDocs);
    this.#docScores = new Float32Array(this.numDocs);
    this.#touchedDocs = new Int32Array(this.numDocs);
  }

  /** Indexed strings: labels under `best`, documents under `joined`. */
  get units(): number {
    return this.#scorer.numDocs;
  }

  /** Writes the score of every document for `query` into out[offset, offset + numDocs). */
  scoreInto(query: string, out: Float32Array, offset = 0): void {
    if (this.#unitDoc === null) {
      this.#scorer.scoreInto(query, out, offset);
      return;
    }
    this.#scorer.scoreInto(query, this.#unitScores, 0);
    // Both rankers score ≥ 0, and a document without strings scores 0.
    out.fill(0, offset, offset + this.numDocs);
    const unitDoc = this.#unitDoc;
    const unitScores = this.#unitScores;
    for (let u = 0; u < unitScores.length; u++) {
      const score = unitScores[u]!;
      if (score === 0) continue; // most labels share nothing with a short query
      const slot = offset + unitDoc[u]!;
      if (score > out[slot]!) out[slot] = score;
    }
  }

  scores(query: string): Float32Array {
    return scoreRow(this, query);
  }

  /** Row-major [queries.length × numDocs]. */
  scoreMatrix(queries: readonly string[]): Float32Array {
    return scoreMatrix(this, queries);
  }

  /** The `window` best documents with a positive score, best first (ties: lower index first). */
  candidates(query: string, window: number): Candidates {
    if (this.#scorer.scoreSparse !== undefined) return this.#sparseCandidates(this.#scorer.scoreSparse(query), window);
    this.scoreInto(query, this.#docScores, 0);
    return positiveTop(this.#docScores, window);
  }

  /**
   * `candidates` from the scorer's sparse scores: the same float32 document scores (the best
   * label's under `best`) in the same order, with work in proportion to the labels the query
   * touches rather than to all of them. #docScores is all zero between calls.
   */
  #sparseCandidates(sparse: { count: number; ids: Int32Array; scores: Float64Array }, window: number): Candidates {
    const docScores = this.#docScores;
    const touched = this.#touchedDocs;
    let count = 0;
    for (let i = 0; i < sparse.count; i++) {
      const unit = sparse.ids[i]!;
      const doc = this.#unitDoc === null ? unit : this.#unitDoc[unit]!;
      const score = Math.fround(sparse.scores[i]!);
      if (docScores[doc] === 0) touched[count++] = doc;
      if (score > docScores[doc]!) docScores[doc] = score;
    }
    // In document order, so topK's tie rule (lower position first) is the lower document first.
    const docs = touched.subarray(0, count).sort();
    const compact = new Float32Array(count);
    for (let i = 0; i < count; i++) compact[i] = docScores[docs[i]!]!;
    const order = topK(compact, Math.min(window, count));
    const best = new Int32Array(order.length);
    const scores = new Float32Array(order.length);
    for (let i = 0; i < order.length; i++) {
      best[i] = docs[order[i]!]!;
      scores[i] = compact[order[i]!]!;
    }
    for (let i = 0; i < count; i++) docScores[docs[i]!] = 0;
    return { docs: best, scores };
  }
}

/** The top `window` entries of `row` with a score > 0, best first. */
export function positiveTop(row: Float32Array, window: number): Candidates {
  let positive = 0;
  for (let i = 0; i < row.length; i++) if (row[i]! > 0) positive++;
  const docs = topK(row, Math.min(window, positive));
  return { docs, scores: Float32Array.from(docs, (d) => row[d]!) };
}

/** The top `window` entries of `row`, best first (dense candidates: every document is retrieved). */
export function top(row: Float32Array, window: number): Candidates {
  const docs = topK(row, window);
  return { docs, scores: Float32Array.from(docs, (d) => row[d]!) };
}
