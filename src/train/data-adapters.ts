/**
 * Adapters from the data layer's batcher and miner (src/data) to the two-tower strategy's
 * interfaces, so the strategy depends on shapes, not on classes.
 *
 * Batching across several training recipes:
 *   mixed       one batcher over all pairs: a batch mixes recipes (occupation titles beside skills)
 *   per_source  one batcher per recipe; each step draws a recipe with probability proportional to
 *               its batches per epoch times its `weight` (sentence-transformers' proportional multi-dataset sampler),
 *               so every in-batch negative is of the same kind as the positive: harder negatives
 */
import { PairBatcher, type BatcherState } from '../data/batch.js';
import { HardNegativeMiner } from '../data/negatives.js';
import { Rng } from '../data/rng.js';
import { sliceBatches, type BatchSource, type SlicedBatchSource } from '../data/step-slices.js';
import type { KilnConfig } from '../config/schema.js';
import type { NegativeMiner, NegativePool, PairBatchSource, TokenizedPairs } from './strategies/two-tower.js';
import type { ParallelPlace } from './task.js';

/** This process's micro-batches of each step's batch: grad_accum slices of its rank's share (src/data/step-slices.ts). */
export function stepBatches(source: BatchSource, config: KilnConfig, parallel: ParallelPlace | undefined): SlicedBatchSource {
  return sliceBatches(source, { gradAccum: config.train.grad_accum, rank: parallel?.rank ?? 0, worldSize: parallel?.worldSize ?? 1 });
}

function batcherFor(pairs: TokenizedPairs, start: number, end: number, config: KilnConfig, seed: number): PairBatcher {
  const items = [];
  for (let i = start; i < end; i++) items.push({ query: pairs.queryIds[i]!, doc: pairs.docIds[i]!, group: pairs.group[i]!, queryType: '', docType: '' });
  return new PairBatcher(items, { batchSize: config.train.batch_size, seed, bucketWindow: config.data.bucket_window });
}

export function createPairBatchSource(pairs: TokenizedPairs, ranges: ReadonlyArray<{ recipe: string; start: number; end: number; weight?: number }>, config: KilnConfig): PairBatchSource {
  if (config.data.batching === 'mixed' || ranges.length <= 1) {
    const batcher = batcherFor(pairs, 0, pairs.queryIds.length, config, config.seed);
    return {
      next: () => batcher.nextItems(),
      state: () => batcher.state(),
      restore: (state) => batcher.restore(state as BatcherState),
    };
  }
  const sources = ranges.map((range, i) => {
    if (range.end - range.start < config.train.batch_size) {
      throw new Error(`data.batching per_source: data.train[${i}] (${range.recipe}) has ${range.end - range.start} pairs, fewer than train.batch_size ${config.train.batch_size}`);
    }
    return { offset: range.start, batcher: batcherFor(pairs, range.start, range.end, config, config.seed + 7919 * (i + 1)) };
  });
  const weights = sources.map((s, i) => s.batcher.batchesPerEpoch * (ranges[i]!.weight ?? 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let rng = Rng.derive(config.seed, 'per-source-batching');
  return {
    next: () => {
      let r = rng.next() * total;
      let chosen = sources.length - 1;
      for (let i = 0; i < weights.length; i++) {
        if (r < weights[i]!) {
          chosen = i;
          break;
        }
        r -= weights[i]!;
      }
      const { offset, batcher } = sources[chosen]!;
      return batcher.nextItems().map((i) => i + offset);
    },
    state: () => ({ rng: rng.state(), batchers: sources.map((s) => s.batcher.state()) }),
    restore: (state) => {
      const saved = state as { rng: number; batchers: BatcherState[] };
      if (!Array.isArray(saved.batchers) || saved.batchers.length !== sources.length) {
        throw new Error(`the checkpoint's data state has ${saved.batchers?.length ?? 0} sources; this config has ${sources.length}`);
      }
      rng = Rng.fromState(saved.rng);
      sources.forEach((s, i) => s.batcher.restore(saved.batchers[i]!));
    },
  };
}

export function createNegativeMiner(pool: NegativePool): NegativeMiner {
  // The miner keys documents by text; a pool entry is (input type, text).
  return new HardNegativeMiner({ texts: pool.texts.map((t, i) => `${pool.types[i]}\u0000${t}`), groups: pool.group });
}
