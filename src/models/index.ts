/** Models: the BERT encoder, pooling, interaction heads, the two-tower model and the cross-encoder. */
export * from './config.js';
export { BertEncoder, ModuleList } from './bert.js';
export { pool, POOLING } from './pooling.js';
export { createHead, HEADS, InteractionHead } from './heads.js';
export { TwoTowerModel, type EncodedBatch, type Side } from './two-tower.js';
export { CrossEncoderModel, type CrossEncoderConfig, type EncodedPairBatch } from './cross-encoder.js';
