/** Models: the BERT encoder, pooling, interaction heads and the two-tower model. */
export * from './config.js';
export { BertEncoder, ModuleList } from './bert.js';
export { pool, POOLING } from './pooling.js';
export { createHead, HEADS, InteractionHead } from './heads.js';
export { TwoTowerModel, type EncodedBatch, type Side } from './two-tower.js';
