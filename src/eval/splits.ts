/**
 * Evaluating a run's configured splits with the model, with a lexical ranker, or with both
 * fused (./fusion.ts). Metric keys are `<eval name>/<metric>` (the keys of metrics.jsonl, early
 * stopping and the summary); the hybrid's are `<eval name>/hybrid/<metric>`.
 */
import { keep, tidy, type Tensor } from '../engine/index.js';
import { evaluateRetrieval, evaluateScoredPairs, type RetrievalScorer } from './evaluate.js';
import { fuse, fusedRow, type FusionOptions, type HybridOptions } from './fusion.js';
import { LexicalRanker, top, type Candidates, type LexicalName, type LexicalSettings } from './lexical.js';

export { DEFAULT_HYBRID, type HybridOptions } from './fusion.js';
import type { RetrievalSplit, ScoredTextPair } from '../data/types.js';
import type { EvalSpec } from '../config/schema.js';

/** A loaded evaluation split with its resolved lexical and hybrid settings. */
export type EvalSplit =
  | { spec: EvalSpec; kind: 'retrieval'; split: RetrievalSplit; sampled: RetrievalSplit; lexical: LexicalSettings; hybrid: HybridOptions | null }
  | { spec: EvalSpec; kind: 'scored-pairs'; pairs: ScoredTextPair[]; lexical: LexicalSettings };

/**
 * What evaluation needs from a model: embeddings per side and input type, a corpus scorer and
 * aligned pair scores. Kiln's eager model (ModelEmbedder) and an exported ONNX model
 * (src/export/evaluate-exported.ts) both provide it, so they are evaluated by the same code.
 */
export interface SplitEmbedder {
  /** [N, D] float32, in the order of `texts`. */
  embed(side: 'query' | 'doc', inputType: string, texts: readonly string[]): Tensor;
  scorer(queries: Tensor, corpus: Tensor): RetrievalScorer;
  /** Scores of aligned rows a[i], b[i] (STS-style pairs). */
  pairScores(a: Tensor, b: Tensor): Float32Array;
}

const corpusKeys = new WeakMap<object, string>();
/** Identity of a corpus by content (every document's text and labels), computed once per array. */
function corpusKey(corpus: RetrievalSplit['corpus']): string {
  let key = corpusKeys.get(corpus);
  if (key === undefined) {
    key = corpus.map((d) => `${d.text}\u0002${(d.labels ?? []).join('\u0002')}`).join('\u0001');
    corpusKeys.set(corpus, key);
  }
  return key;
}

/** Corpus embeddings shared by the splits of one evaluation (TECH and HOUSE both rank all ESCO skills). */
export class CorpusEmbeddings {
  readonly #cache = new Map<string, Tensor>();

  constructor(readonly embedder: SplitEmbedder) {}

  get(split: RetrievalSplit): Tensor {
    const key = `${split.docType}\u0000${corpusKey(split.corpus)}`;
    let corpus = this.#cache.get(key);
    if (corpus === undefined) {
      corpus = keep(this.embedder.embed('doc', split.docType, split.corpus.map((d) => d.text)));
      this.#cache.set(key, corpus);
    }
    return corpus;
  }

  dispose(): void {
    for (const embeddings of this.#cache.values()) embeddings.dispose();
    this.#cache.clear();
  }
}

/**
 * The model's metrics on one retrieval split; with `window`, also each query's `window` best
 * documents (the dense part of a hybrid), read from the same score rows.
 */
export function evaluateDense(split: RetrievalSplit, metrics: readonly string[], corpora: CorpusEmbeddings, window?: number): { metrics: Record<string, number>; candidates: Candidates[] } {
  const candidates: Candidates[] = [];
  const numDocs = split.corpus.length;
  const values = tidy(() => {
    const queries = corpora.embedder.embed('query', split.queryType, split.queries.map((q) => q.text));
    const scorer = corpora.embedder.scorer(queries, corpora.get(split));
    const collecting: RetrievalScorer =
      window === undefined
        ? scorer
        : {
            scoreRows(start, end) {
              const rows = scorer.scoreRows(start, end);
              for (let q = 0; q < end - start; q++) candidates.push(top(rows.subarray(q * numDocs, (q + 1) * numDocs), window));
              return rows;
            },
          };
    return evaluateRetrieval(split, collecting, metrics);
  });
  return { metrics: values, candidates };
}

// Lexical rankers are built once per (ranker, settings, corpus), and their candidate lists once
// per split object: they do not change while a model trains.
const rankers = new Map<string, LexicalRanker>();
const lexicalCandidateLists = new WeakMap<RetrievalSplit, Map<string, Candidates[]>>();

export function lexicalRanker(split: RetrievalSplit, name: LexicalName, settings: LexicalSettings): LexicalRanker {
  const key = `${name}\u0000${settings.fields.join(',')}\u0000${settings.match}\u0000${corpusKey(split.corpus)}`;
  let ranker = rankers.get(key);
  if (ranker === undefined) {
    ranker = new LexicalRanker(name, split.corpus, settings);
    rankers.set(key, ranker);
  }
  return ranker;
}

/** Each query's `window` best documents with a positive score under the lexical ranker. */
export function lexicalCandidates(split: RetrievalSplit, name: LexicalName, settings: LexicalSettings, window: number): Candidates[] {
  const key = `${name}\u0000${settings.fields.join(',')}\u0000${settings.match}\u0000${window}`;
  let perSplit = lexicalCandidateLists.get(split);
  if (perSplit === undefined) lexicalCandidateLists.set(split, (perSplit = new Map()));
  let lists = perSplit.get(key);
  if (lists === undefined) {
    const ranker = lexicalRanker(split, name, settings);
    lists = split.queries.map((q) => ranker.candidates(q.text, window));
    perSplit.set(key, lists);
  }
  return lists;
}

/** The metrics of the fused ranking of each query's dense and lexical candidates. */
export function evaluateFused(split: RetrievalSplit, dense: readonly Candidates[], lexical: readonly Candidates[], options: FusionOptions, metrics: readonly string[]): Record<string, number> {
  const numDocs = split.corpus.length;
  const scorer: RetrievalScorer = {
    scoreRows(start, end) {
      const rows = new Float32Array((end - start) * numDocs);
      for (let q = start; q < end; q++) fusedRow(fuse(dense[q]!, lexical[q]!, options), numDocs, rows.subarray((q - start) * numDocs, (q - start + 1) * numDocs));
      return rows;
    },
  };
  return evaluateRetrieval(split, scorer, metrics);
}

function prefixed(prefix: string, metrics: Record<string, number>, out: Record<string, number>): void {
  for (const [metric, value] of Object.entries(metrics)) out[`${prefix}/${metric}`] = value;
}

/**
 * The model on every split, and on splits with a hybrid configured, the hybrid too.
 * `sampled`: use each split's `max_queries` sample (evaluation during training); else the full split.
 */
export function evaluateSplitsWithModel(splits: readonly EvalSplit[], embedder: SplitEmbedder, options: { sampled: boolean }): Record<string, number> {
  const out: Record<string, number> = {};
  const corpora = new CorpusEmbeddings(embedder);
  try {
    for (const entry of splits) {
      if (entry.kind === 'retrieval') {
        const split = options.sampled ? entry.sampled : entry.split;
        const dense = evaluateDense(split, entry.spec.metrics, corpora, entry.hybrid?.window);
        prefixed(entry.spec.name, dense.metrics, out);
        if (entry.hybrid !== null) {
          const lexical = lexicalCandidates(split, entry.hybrid.lexical, entry.lexical, entry.hybrid.window);
          prefixed(`${entry.spec.name}/hybrid`, evaluateFused(split, dense.candidates, lexical, entry.hybrid, entry.spec.metrics), out);
        }
        continue;
      }
      // Scored pairs: text a through the query side, text b through the side the recipe names
      // (the query side for symmetric sets such as STS), scored by the head.
      const metrics = tidy(() => {
        const first = entry.pairs[0];
        const a = embedder.embed('query', first?.aType ?? 'sentence', entry.pairs.map((p) => p.a));
        const b = embedder.embed(first?.bSide ?? 'query', first?.bType ?? 'sentence', entry.pairs.map((p) => p.b));
        return evaluateScoredPairs(entry.spec.name, entry.pairs, embedder.pairScores(a, b), entry.spec.metrics);
      });
      prefixed(entry.spec.name, metrics, out);
    }
  } finally {
    corpora.dispose();
  }
  return out;
}

/** One lexical ranker on the full splits (scored pairs: sentence b as a one-document corpus for a). */
export function evaluateSplitsWithLexical(splits: readonly EvalSplit[], name: LexicalName): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of splits) {
    let metrics: Record<string, number>;
    if (entry.kind === 'retrieval') {
      const ranker = lexicalRanker(entry.split, name, entry.lexical);
      const queries = entry.split.queries.map((q) => q.text);
      metrics = evaluateRetrieval(entry.split, { scoreRows: (start, end) => ranker.scoreMatrix(queries.slice(start, end)) }, entry.spec.metrics);
    } else {
      const predicted = entry.pairs.map((p) => new LexicalRanker(name, [{ id: 'b', text: p.b }], entry.lexical).scores(p.a)[0]!);
      metrics = evaluateScoredPairs(entry.spec.name, entry.pairs, predicted, entry.spec.metrics);
    }
    prefixed(entry.spec.name, metrics, out);
  }
  return out;
}

/** BM25 beside every neural number. */
export function evaluateSplitsWithBm25(splits: readonly EvalSplit[]): Record<string, number> {
  return evaluateSplitsWithLexical(splits, 'bm25');
}
