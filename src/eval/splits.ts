/**
 * Evaluating a run's configured splits, with the model or with BM25. Metric keys are
 * `<eval name>/<metric>`, the keys of metrics.jsonl, early stopping and the summary.
 */
import { keep, tidy, type Tensor } from '../engine/index.js';
import { bm25Scorer, evaluateRetrieval, evaluateScoredPairs } from './evaluate.js';
import { Bm25Index } from './bm25.js';
import type { RetrievalScorer } from './evaluate.js';
import type { EvalSplit } from '../train/setup.js';

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
/** Identity of a corpus by content (input type and every document's text), computed once per array. */
function corpusKey(docType: string, corpus: ReadonlyArray<{ text: string }>): string {
  let key = corpusKeys.get(corpus);
  if (key === undefined) {
    key = corpus.map((d) => d.text).join('\u0001');
    corpusKeys.set(corpus, key);
  }
  return `${docType}\u0000${key}`;
}

/** `sampled`: use each split's `max_queries` sample (evaluation during training); else the full split. */
export function evaluateSplitsWithModel(splits: readonly EvalSplit[], embedder: SplitEmbedder, options: { sampled: boolean }): Record<string, number> {
  const out: Record<string, number> = {};
  // Splits that share a corpus (TECH and HOUSE both rank all ESCO skills) embed it once.
  const corpora = new Map<string, Tensor>();
  try {
  for (const entry of splits) {
    const metrics = tidy(() => {
      if (entry.kind === 'retrieval') {
        const split = options.sampled ? entry.sampled : entry.split;
        const queries = embedder.embed('query', split.queryType, split.queries.map((q) => q.text));
        const key = corpusKey(split.docType, split.corpus);
        let corpus = corpora.get(key);
        if (corpus === undefined) {
          corpus = keep(embedder.embed('doc', split.docType, split.corpus.map((d) => d.text)));
          corpora.set(key, corpus);
        }
        return evaluateRetrieval(split, embedder.scorer(queries, corpus), entry.spec.metrics);
      }
      // Scored pairs (STS): both sentences through the query side, scored by the head.
      const a = embedder.embed('query', 'sentence', entry.pairs.map((p) => p.a));
      const b = embedder.embed('query', 'sentence', entry.pairs.map((p) => p.b));
      const predicted = embedder.pairScores(a, b);
      return evaluateScoredPairs(entry.spec.name, entry.pairs, predicted, entry.spec.metrics);
    });
    for (const [metric, value] of Object.entries(metrics)) out[`${entry.spec.name}/${metric}`] = value;
  }
  } finally {
    for (const embeddings of corpora.values()) embeddings.dispose();
  }
  return out;
}

/** BM25 on the full splits (scored pairs: BM25 of sentence b as a one-document corpus for a). */
export function evaluateSplitsWithBm25(splits: readonly EvalSplit[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of splits) {
    let metrics: Record<string, number>;
    if (entry.kind === 'retrieval') {
      metrics = evaluateRetrieval(entry.split, bm25Scorer(entry.split), entry.spec.metrics);
    } else {
      const predicted = entry.pairs.map((p) => new Bm25Index([p.b]).scores(p.a)[0]!);
      metrics = evaluateScoredPairs(entry.spec.name, entry.pairs, predicted, entry.spec.metrics);
    }
    for (const [metric, value] of Object.entries(metrics)) out[`${entry.spec.name}/${metric}`] = value;
  }
  return out;
}
