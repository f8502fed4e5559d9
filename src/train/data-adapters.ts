/**
 * Adapters from the data layer's batcher and miner (src/data) to the two-tower strategy's
 * interfaces, so the strategy depends on shapes, not on classes.
 */
import { PairBatcher, type BatcherState } from '../data/batch.js';
import { HardNegativeMiner } from '../data/negatives.js';
import type { KilnConfig } from '../config/schema.js';
import type { NegativeMiner, NegativePool, PairBatchSource, TokenizedPairs } from './strategies/two-tower.js';

export function createPairBatchSource(pairs: TokenizedPairs, config: KilnConfig): PairBatchSource {
  const items = pairs.queryIds.map((query, i) => ({ query, doc: pairs.docIds[i]!, group: pairs.group[i]!, queryType: '', docType: '' }));
  const batcher = new PairBatcher(items, { batchSize: config.train.batch_size, seed: config.seed, padId: 0, bucketWindow: config.data.bucket_window });
  return {
    next: () => batcher.next().items,
    state: () => batcher.state(),
    restore: (state) => batcher.restore(state as BatcherState),
  };
}

export function createNegativeMiner(pool: NegativePool): NegativeMiner {
  // The miner keys documents by text; a pool entry is (input type, text).
  return new HardNegativeMiner({ texts: pool.texts.map((t, i) => `${pool.types[i]}\u0000${t}`), groups: pool.group });
}
