/** Models: the BERT encoder, pooling, interaction heads, the two-tower model and the cross-encoder. */
export * from './config.js';
export { BertEncoder, ModuleList, type EncoderStates } from './bert.js';
export { pool, POOLING } from './pooling.js';
export { createHead, HEADS, InteractionHead } from './heads.js';
export { TwoTowerModel, type EncodedBatch, type Side } from './two-tower.js';
export { CrossEncoderModel, type CrossEncoderConfig, type EncodedPairBatch } from './cross-encoder.js';
export { MaskedLanguageModel, type MaskedLmConfig } from './masked-lm.js';
export { padToTensors, padPairsToTensors } from './inputs.js';
export {
  MODEL_KINDS,
  RunModelError,
  createModel,
  encodersOf,
  isModelKind,
  loadRunModel,
  readRunModelJson,
  type InitLineage,
  type KindedModel,
  type LoadedRunModel,
  type ModelKind,
  type RunModelJson,
  type RunModelJsons,
} from './run-model.js';
export * from './hf-checkpoint.js';
