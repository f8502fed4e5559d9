/**
 * Evaluating an exported two-tower model with the same evaluator as the eager model
 * (src/eval/splits.ts): every text a split needs is embedded by onnxruntime first (the
 * session is asynchronous), then the synchronous evaluator reads the vectors from that table.
 * Scores are dot products of the stored vectors, which is the model's score for the cosine
 * head (unit vectors) and the dot head; a Hadamard-MLP head has no exported scorer.
 */
import { fromTypedArray, tidy, type Tensor } from '../engine/index.js';
import { evaluateSplitsWithModel, type SplitEmbedder } from '../eval/splits.js';
import type { RetrievalScorer } from '../eval/evaluate.js';
import type { EvalSplit } from '../train/setup.js';
import type { ExportedModel, Side } from '../serve/exported-model.js';

const key = (side: Side, inputType: string, text: string): string => `${side}\u0000${inputType}\u0000${text}`;

/** What the splits ask the model to embed: (side, input type) → texts. */
export function textsToEmbed(splits: readonly EvalSplit[]): Array<{ side: Side; inputType: string; texts: string[] }> {
  const wanted = new Map<string, { side: Side; inputType: string; texts: Set<string> }>();
  const add = (side: Side, inputType: string, texts: readonly string[]): void => {
    const k = `${side}\u0000${inputType}`;
    let entry = wanted.get(k);
    if (entry === undefined) wanted.set(k, (entry = { side, inputType, texts: new Set() }));
    for (const t of texts) entry.texts.add(t);
  };
  for (const entry of splits) {
    if (entry.kind === 'retrieval') {
      add('query', entry.split.queryType, entry.split.queries.map((q) => q.text));
      add('doc', entry.split.docType, entry.split.corpus.map((d) => d.text));
    } else {
      add('query', 'sentence', entry.pairs.flatMap((p) => [p.a, p.b]));
    }
  }
  return [...wanted.values()].map((w) => ({ side: w.side, inputType: w.inputType, texts: [...w.texts] }));
}

class PrecomputedEmbedder implements SplitEmbedder {
  constructor(
    readonly vectors: ReadonlyMap<string, Float32Array>,
    readonly dimension: number,
  ) {}

  embed(side: Side, inputType: string, texts: readonly string[]): Tensor {
    const data = new Float32Array(texts.length * this.dimension);
    texts.forEach((t, i) => {
      const v = this.vectors.get(key(side, inputType, t));
      if (v === undefined) throw new Error(`no precomputed embedding for ${side}/${inputType} text ${JSON.stringify(t)}`);
      data.set(v, i * this.dimension);
    });
    return fromTypedArray(data, { shape: [texts.length, this.dimension] });
  }

  scorer(queries: Tensor, corpus: Tensor): RetrievalScorer {
    return { scoreRows: (start, end) => tidy(() => queries.narrow(0, start, end - start).matmul(corpus.transpose(0, 1)).contiguous().toTypedArray<'float32'>() as Float32Array) };
  }

  pairScores(a: Tensor, b: Tensor): Float32Array {
    return tidy(() => a.mul(b).sum([-1]).contiguous().toTypedArray<'float32'>() as Float32Array);
  }
}

/** Metrics `<split>/<metric>` of the exported model on full splits. */
export async function evaluateExported(model: ExportedModel, splits: readonly EvalSplit[]): Promise<Record<string, number>> {
  const card = model.card;
  if (card.kind !== 'two-tower') throw new Error(`${model.dir}: evaluating a ${card.kind} on retrieval splits is not supported; it scores pairs`);
  if (card.head === 'hadamard_mlp') throw new Error(`${model.dir}: the Hadamard-MLP head is not part of the exported graph, so corpus scores cannot be computed from the vectors`);
  const vectors = new Map<string, Float32Array>();
  for (const { side, inputType, texts } of textsToEmbed(splits)) {
    const embedded = await model.embed(texts, { side, inputType });
    texts.forEach((t, i) => vectors.set(key(side, inputType, t), embedded[i]!));
  }
  return evaluateSplitsWithModel(splits, new PrecomputedEmbedder(vectors, card.dimension), { sampled: false });
}
