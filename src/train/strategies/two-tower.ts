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
 *
 * With `gather` (loss `gather_negatives` across W processes), each rank encodes its own slice
 * and the embeddings of every rank are all-gathered (allGatherWithGrad) before the score matrix:
 *   Q = [q_0; …; q_{W−1}]                           [W·b, H]
 *   D = [positives_0; …; positives_{W−1}; extra_0; …; extra_{W−1}]   extras padded to the
 *       largest count and the padding excluded in every row
 * so every rank computes the loss of the whole batch, as one process would (same columns, in
 * another order for the extras), and in-batch negatives grow with the world size.
 */
import { allGatherWithGrad, cat, fromTypedArray, noGrad, tensor, zeros, type ProcessGroup, type Tensor } from '../../engine/index.js';
import type { BatchSource, SlicedBatchSource } from '../../data/step-slices.js';
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
export type PairBatchSource = BatchSource;

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
  batches: SlicedBatchSource;
  padId: number;
  padTo: { query: number; doc: number } | null;
  maskSameGroup: boolean;
  device: 'cpu' | 'cuda';
  hardNegatives: { k: number; refreshEvery: number; startStep: number; pool: NegativePool; miner: NegativeMiner; embedder: ModelEmbedder } | null;
  /**
   * Gather every rank's embeddings into one score matrix (loss `gather_negatives`) over `group`,
   * with `timed` counting the collectives' time; null = this rank's slice alone.
   */
  gather?: { group: ProcessGroup; timed: <T>(fn: () => T) => T } | null;
}

/**
 * [B, C] bool: true where candidate j is of query i's group (concept) but is not its own
 * positive (column i), so in-batch items of the same concept are not scored as negatives;
 * undefined when there is none.
 */
export function sameGroupExclusion(queryGroups: ArrayLike<number>, candidateGroups: ArrayLike<number>, device: 'cpu' | 'cuda', options: { sameGroup?: boolean; columns?: ReadonlySet<number> } = {}): Tensor | undefined {
  const b = queryGroups.length;
  const c = candidateGroups.length;
  const sameGroup = options.sameGroup ?? true;
  const columns = options.columns ?? new Set<number>();
  const mask = new Uint8Array(b * c);
  let any = false;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < c; j++) {
      // `columns`: candidates excluded for every query (the padding of gathered negatives).
      if (columns.has(j) || (sameGroup && j !== i && candidateGroups[j] === queryGroups[i])) {
        mask[i * c + j] = 1;
        any = true;
      }
    }
  }
  return any ? fromTypedArray(mask, { shape: [b, c], dtype: 'bool', device }) : undefined;
}

/** The group of a padding row among gathered extra candidates. */
const PADDING_GROUP = -(2 ** 31);

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

    // One process's batch, or with `gather` the whole batch of every rank.
    const gather = this.o.gather ?? null;
    const all = gather === null || gather.group.worldSize === 1 ? null : this.#gather(gather.group, gather.timed, q, d, candidateGroups.slice(b));
    const scores = all === null ? model.head.matrix(q, d) : model.head.matrix(all.q, all.d); // [B, C]
    const batchItems = all === null ? items : all.items;
    const queryGroups = all === null ? groups : Int32Array.from(batchItems, (i) => pairs.group[i]!);
    const exclude =
      all === null
        ? this.o.maskSameGroup
          ? sameGroupExclusion(groups, candidateGroups, this.o.device)
          : undefined
        : sameGroupExclusion(queryGroups, all.candidateGroups, this.o.device, { sameGroup: this.o.maskSameGroup, columns: all.padding });
    const positiveTarget = pairs.label === null ? undefined : fromTypedArray(Float32Array.from(batchItems, (i) => pairs.label![i]!), { shape: [batchItems.length], device: this.o.device });
    const { total, parts } = this.o.loss.forward({ scores: { scores, exclude, groups: queryGroups, ...(positiveTarget === undefined ? {} : { positiveTarget }) } });
    const logs: Record<string, number> = {};
    for (const [name, value] of Object.entries(parts)) logs[`loss_${name}`] = value.item();
    if (exclude !== undefined) logs.masked_fraction = exclude.float().mean().item();
    if (mined > 0) logs.hard_negatives = mined / b;
    if (explicit > 0) logs.explicit_negatives = explicit / b;
    const seqTokens = queries.inputIds.numel + docs.inputIds.numel;
    return { loss: total, logs, examples: b, tokens: seqTokens };
  }

  /**
   * Every rank's queries, positives and extra candidates (explicit and mined negatives), in rank
   * order. Extras are padded to the largest count across ranks, because an all-gather needs one
   * shape; the padding columns are returned for exclusion. Explicit negatives get fresh unique
   * groups here (each rank numbered its own from −b−1 down).
   */
  #gather(group: ProcessGroup, timed: <T>(fn: () => T) => T, q: Tensor, d: Tensor, extraGroups: readonly number[]): { q: Tensor; d: Tensor; items: Int32Array; candidateGroups: Int32Array; padding: Set<number> } {
    const slices = this.o.batches.slicesAcrossRanks();
    const items = Int32Array.from(slices.flatMap((s) => [...s]));
    const b = q.shape[0]!;
    const extra = extraGroups.length;
    const counts = Array.from(timed(() => group.allgather(tensor([extra], { dtype: 'int32' }))).toTypedArray() as Int32Array);
    const most = Math.max(...counts);
    const allQueries = timed(() => allGatherWithGrad(group, q));
    const positives = timed(() => allGatherWithGrad(group, d.narrow(0, 0, b)));
    const candidateGroups: number[] = Array.from(items, (i) => this.o.pairs.group[i]!);
    const padding = new Set<number>();
    if (most === 0) return { q: allQueries, d: positives, items, candidateGroups: Int32Array.from(candidateGroups), padding };
    const hidden = d.shape[1]!;
    const own = extra === most ? d.narrow(0, b, extra) : cat([...(extra > 0 ? [d.narrow(0, b, extra)] : []), zeros([most - extra, hidden], { dtype: d.dtype, device: this.o.device })], 0);
    const extras = timed(() => allGatherWithGrad(group, own));
    const paddedGroups = Int32Array.from({ length: most }, (_, j) => (j < extra ? extraGroups[j]! : PADDING_GROUP));
    const gatheredGroups = timed(() => group.allgather(fromTypedArray(paddedGroups, { shape: [most], dtype: 'int32' }))).toTypedArray() as Int32Array;
    for (const g of gatheredGroups) {
      if (g === PADDING_GROUP) padding.add(candidateGroups.length);
      candidateGroups.push(g >= 0 ? g : -candidateGroups.length - 1);
    }
    return { q: allQueries, d: cat([positives, extras], 0), items, candidateGroups: Int32Array.from(candidateGroups), padding };
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
