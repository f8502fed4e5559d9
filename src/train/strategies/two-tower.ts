/**
 * The two-tower strategy: a micro-batch of B (query, positive doc) pairs becomes a [B, C] score
 * matrix and a weighted loss.
 *
 *   q = pool(encoder_q(prompt(query)))             [B, H]
 *   explicit negatives (triplets): each pair's own negatives, scored against every query
 *   hard negatives (optional): top-k pool documents for each detached q, same concept excluded,
 *                              the pool re-embedded every `refresh_every` steps (ANCE-style,
 *                              Xiong et al. 2021, arXiv 2007.00808)
 *   d = pool(encoder_d(prompt([positives; explicit; mined])))   [C, H], C = B + E + B·k
 *   S = head.matrix(q, d)                          [B, C]; column i is query i's positive,
 *                                                  with target label(i) for scored pairs
 *   exclude[i, j] = group(i) = group(j), j ≠ i     in-batch items of the same concept are not negatives
 *   loss = Σ w_l · loss_l(S, exclude)
 */
import { fromTypedArray, noGrad, type Tensor } from '../../engine/index.js';
import { padToTensors } from '../../models/inputs.js';
import { embedTyped, type ModelEmbedder } from '../../eval/embedder.js';
import type { TwoTowerModel } from '../../models/index.js';
import type { WeightedLoss } from '../../losses/index.js';
import type { StepContext, StepOutput, TrainStrategy } from '../strategy.js';

/** Tokenised training pairs, indexed by pair. */
export interface TokenizedPairs {
  queryIds: Int32Array[];
  docIds: Int32Array[];
  /** Concept index of each pair (same concept = not a negative). */
  group: Int32Array;
  /** Index of each pair's document in the negative pool. */
  docPoolIndex: Int32Array;
  /** Each pair's explicit negatives (triplets), tokenised; empty for plain pairs. */
  negativeIds: Int32Array[][];
  /** Each pair's graded target in [0, 1] (scored pairs); null when every pair is a positive. */
  label: Float32Array | null;
}

/** The negative pool: every distinct training document. */
export interface NegativePool {
  docIds: Int32Array[];
  group: Int32Array;
  /** Texts and input types, for re-embedding with the current model. */
  texts: string[];
  types: string[];
}

/** Yields batches of pair indices; its state resumes the exact sequence. */
export interface PairBatchSource {
  next(): Int32Array;
  state(): unknown;
  restore(state: unknown): void;
}

/** Top-k pool documents per query with same-concept documents excluded (src/data/negatives.ts). */
export interface NegativeMiner {
  refresh(embed: (docIndices: Int32Array) => Tensor): void;
  mine(queryEmbeddings: Tensor, queryGroups: Int32Array, k: number, excludeDocs?: Int32Array): Int32Array;
  dispose(): void;
}

export interface TwoTowerStrategyOptions {
  model: TwoTowerModel;
  loss: WeightedLoss;
  pairs: TokenizedPairs;
  batches: PairBatchSource;
  padId: number;
  padTo: { query: number; doc: number } | null;
  maskSameGroup: boolean;
  device: 'cpu' | 'cuda';
  hardNegatives: { k: number; refreshEvery: number; startStep: number; pool: NegativePool; miner: NegativeMiner; embedder: ModelEmbedder } | null;
}

/**
 * [B, C] bool: true where candidate j is of query i's group (concept) but is not its own
 * positive (column i), so in-batch items of the same concept are not scored as negatives;
 * undefined when there is none.
 */
export function sameGroupExclusion(queryGroups: ArrayLike<number>, candidateGroups: ArrayLike<number>, device: 'cpu' | 'cuda'): Tensor | undefined {
  const b = queryGroups.length;
  const c = candidateGroups.length;
  const mask = new Uint8Array(b * c);
  let any = false;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < c; j++) {
      if (j !== i && candidateGroups[j] === queryGroups[i]) {
        mask[i * c + j] = 1;
        any = true;
      }
    }
  }
  return any ? fromTypedArray(mask, { shape: [b, c], dtype: 'bool', device }) : undefined;
}

export class TwoTowerStrategy implements TrainStrategy {
  readonly modules;
  #lastRefresh = -1;

  constructor(private readonly o: TwoTowerStrategyOptions) {
    this.modules = [
      { name: 'model', module: o.model },
      { name: 'loss', module: o.loss },
    ];
  }

  prepare(step: number): void {
    this.#maybeRefresh(step);
  }

  afterOptimizerStep(step: number): void {
    this.#maybeRefresh(step + 1);
  }

  #maybeRefresh(step: number): void {
    const hard = this.o.hardNegatives;
    if (hard === null || hard.k === 0 || step < hard.startStep) return;
    // Refresh on the schedule, and on the first use (a fresh start or a resumed run).
    if (this.#lastRefresh >= 0 && (step - hard.startStep) % hard.refreshEvery !== 0) return;
    hard.miner.refresh((docIndices) => {
      const indices = [...docIndices];
      return embedTyped(hard.embedder, 'doc', indices.map((i) => hard.pool.types[i]!), indices.map((i) => hard.pool.texts[i]!));
    });
    this.#lastRefresh = step;
  }

  step(context: StepContext): StepOutput {
    const { model, pairs } = this.o;
    const items = this.o.batches.next();
    const b = items.length;
    const queries = padToTensors([...items].map((i) => pairs.queryIds[i]!), this.o.padId, this.o.device, this.o.padTo?.query);
    const q = model.encode('query', queries);

    const groups = Int32Array.from(items, (i) => pairs.group[i]!);
    const candidateGroups: number[] = [...groups];
    const docSeqs = [...items].map((i) => pairs.docIds[i]!);
    // Explicit negatives are nobody's positive: each gets a group of its own (negative ids never
    // collide with the concept indices, which start at 0), so no mask hides it.
    for (const i of items) {
      for (const ids of pairs.negativeIds[i]!) {
        docSeqs.push(ids);
        candidateGroups.push(-candidateGroups.length - 1);
      }
    }
    const explicit = docSeqs.length - b;
    const hard = this.o.hardNegatives;
    let mined = 0;
    if (hard !== null && hard.k > 0 && context.step >= hard.startStep) {
      const positives = Int32Array.from(items, (i) => pairs.docPoolIndex[i]!);
      const negatives = noGrad(() => hard.miner.mine(q.detach().float(), groups, hard.k, positives));
      for (const n of negatives) {
        if (n < 0) continue; // fewer than k eligible documents
        docSeqs.push(hard.pool.docIds[n]!);
        candidateGroups.push(hard.pool.group[n]!);
      }
      mined = docSeqs.length - b - explicit;
    }
    const docs = padToTensors(docSeqs, this.o.padId, this.o.device, this.o.padTo?.doc);
    const d = model.encode('doc', docs);
    const scores = model.head.matrix(q, d); // [B, C]

    const exclude = this.o.maskSameGroup ? sameGroupExclusion(groups, candidateGroups, this.o.device) : undefined;
    const positiveTarget = pairs.label === null ? undefined : fromTypedArray(Float32Array.from(items, (i) => pairs.label![i]!), { shape: [b], device: this.o.device });
    const { total, parts } = this.o.loss.forward({ scores: { scores, exclude, groups, ...(positiveTarget === undefined ? {} : { positiveTarget }) } });
    const logs: Record<string, number> = {};
    for (const [name, value] of Object.entries(parts)) logs[`loss_${name}`] = value.item();
    if (exclude !== undefined) logs.masked_fraction = exclude.float().mean().item();
    if (mined > 0) logs.hard_negatives = mined / b;
    if (explicit > 0) logs.explicit_negatives = explicit / b;
    const seqTokens = queries.inputIds.numel + docs.inputIds.numel;
    return { loss: total, logs, examples: b, tokens: seqTokens };
  }

  state(): unknown {
    return { batches: this.o.batches.state() };
  }

  restore(state: unknown): void {
    this.o.batches.restore((state as { batches: unknown }).batches);
  }

  dispose(): void {
    this.o.hardNegatives?.miner.dispose();
  }
}
