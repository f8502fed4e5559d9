/**
 * Kiln's data layer: dataset recipes over public files under a data root, the BERT-uncased
 * WordPiece tokenizer, seeded batching, hard-negative mining, and MLM packing and masking.
 *
 * @example
 * const ctx = createContext({ dataRoot: resolveDataRoot(argv.dataRoot), onBadRow: 'skip', seed: 1 });
 * const pairs = await RECIPES['esco-occupations'].load(ctx, { include_description: true });
 * const tok = WordPieceTokenizer.fromVocabFile(join(ctx.dataRoot, 'bert-vocab/vocab.txt'));
 * const { index: group } = groupIndices(pairs.map((p) => p.group));
 * const tokenized = pairs.map((p, i) => ({ ...p, query: tok.encode(p.query, 64), doc: tok.encode(p.doc, 32), group: group[i]! }));
 * const batcher = new PairBatcher(tokenized, { batchSize: 64, seed: 1 });
 * const items = batcher.nextItems(); // indices into `tokenized`
 * const queries = padBatch([...items].map((i) => tokenized[i]!.query), { padId: tok.padId, padTo: 'longest' });
 */
export * from './types.js';
export { DATASETS, createContext, requireFiles, resolveDataRoot, readCsv, readTsv, readJsonLines, forEachRow, handleRow, TableRow, type DatasetKey } from './files.js';
export { ESCO_FILES, loadEscoConcepts, escoPairs, type EscoConcept } from './esco.js';
export { RECIPES, getRecipe, isRecipeName, loadRecipe, defineRecipe, makeLabelledPairs, type AnyRecipe, type LoadedData, type Recipe, type RecipeKind, type RecipeName, type RecipeOutputs } from './recipes/index.js';
export { WordPieceTokenizer, bertUncasedTokenizerJson, readVocab } from './tokenizer.js';
export { Rng, fnv1a } from './rng.js';
export { PairBatcher, padBatch, groupIndices, type BatcherState, type PadOptions, type PaddedBatch, type PairBatcherOptions, type TokenizedPair } from './batch.js';
export { HardNegativeMiner } from './negatives.js';
export { IGNORE_INDEX, continuationTable, maskTokens, packSequences, specialTokenIds, type MaskOptions, type MaskedSequence } from './mlm.js';
export { loadDomainCorpus, type DomainCorpusOptions, type DomainCorpusStats } from './recipes/domain-corpus.js';

/** Path of the BERT vocabulary under a data root. */
export const BERT_VOCAB = 'bert-vocab/vocab.txt';
