/**
 * `task: twotower` (the default): a two-tower encoder on (query, document) pairs, with
 * in-batch negatives and, optionally, hard negatives mined by the current model
 * (strategies/two-tower.ts). Evaluated on the retrieval and STS splits, with BM25 (and
 * character TF-IDF where a hybrid fuses it) beside every number.
 */
import { createWeightedLoss, gathersNegatives } from '../../losses/index.js';
import { TwoTowerModel, type KindedModel, type RunModelJsons } from '../../models/index.js';
import { ModelEmbedder } from '../../eval/embedder.js';
import { DEFAULT_HYBRID, evaluateSplitsWithModel } from '../../eval/splits.js';
import { hybridReport } from '../../eval/hybrid.js';
import { groupIndices } from '../../data/batch.js';
import type { WordPieceTokenizer } from '../../data/tokenizer.js';
import type { KilnConfig } from '../../config/schema.js';
import { loadRunData, prepareEncoder, twoTowerConfigFrom, type RunData } from '../setup.js';
import { applyInitSource, formatInitReport, lineageOf } from '../init-from.js';
import { formatSummaryTable, lexicalBaselinesAfter } from '../summary.js';
import { createNegativeMiner, createPairBatchSource, stepBatches } from '../data-adapters.js';
import { TwoTowerStrategy, type NegativePool, type TokenizedPairs } from '../strategies/two-tower.js';
import type { Task } from '../task.js';

/** Tokenises the pairs once (each distinct text once) and builds the negative pool. */
export function tokenizePairs(
  data: RunData,
  tokenizer: WordPieceTokenizer,
  prompt: (inputType: string, text: string) => string,
  maxLength: { query: number; doc: number },
): { pairs: TokenizedPairs; pool: NegativePool } {
  const { index: group } = groupIndices(data.pairs.map((p) => p.group));
  const poolIndex = new Map<string, number>();
  const pool: NegativePool = { docIds: [], group: new Int32Array(0), texts: [], types: [] };
  const poolGroups: number[] = [];
  const queryIds = tokenizer.encodeBatch(data.pairs.map((p) => prompt(p.queryType, p.query)), maxLength.query);
  const docIds = tokenizer.encodeBatch(data.pairs.map((p) => prompt(p.docType, p.doc)), maxLength.doc);
  const docPoolIndex = new Int32Array(data.pairs.length);
  data.pairs.forEach((p, i) => {
    const key = `${p.docType}\u0000${p.doc}`;
    let d = poolIndex.get(key);
    if (d === undefined) {
      poolIndex.set(key, (d = pool.texts.length));
      pool.texts.push(p.doc);
      pool.types.push(p.docType);
      pool.docIds.push(docIds[i]!);
      poolGroups.push(group[i]!);
    }
    docPoolIndex[i] = d;
  });
  pool.group = Int32Array.from(poolGroups);
  // Explicit negatives (triplets), each text tokenised once.
  const negativeTexts = new Map<string, Int32Array>();
  const negativeIds = data.pairs.map((p) =>
    (p.negatives ?? []).map((text) => {
      const key = `${p.docType}\u0000${text}`;
      let ids = negativeTexts.get(key);
      if (ids === undefined) negativeTexts.set(key, (ids = tokenizer.encodeBatch([prompt(p.docType, text)], maxLength.doc)[0]!));
      return ids;
    }),
  );
  const hasLabels = data.pairs.some((p) => p.label !== undefined);
  const label = hasLabels ? Float32Array.from(data.pairs, (p) => p.label ?? 1) : null;
  return { pairs: { queryIds, docIds, group, docPoolIndex, negativeIds, label }, pool };
}

export function pairMaxLength(config: KilnConfig): { query: number; doc: number } {
  return { query: config.data.max_length, doc: config.data.doc_max_length ?? config.data.max_length };
}

/** Lines about the pair data for the start banner. */
export function describePairData(data: RunData): string[] {
  const lines = [`${data.pairs.length} training pairs (${Object.entries(data.pairCounts).map(([r, n]) => `${r} ${n}`).join(', ')})`];
  if (data.badRows.total > 0) lines.push(data.badRows.summary());
  if (data.decontaminated > 0) lines.push(`dropped ${data.decontaminated} training pair(s) whose query is also an evaluation query`);
  return lines;
}

export const twoTowerTask: Task = {
  async prepare({ config, dataRoot: dataRootFlag, write, saved }) {
    const base = prepareEncoder(config, dataRootFlag, saved);
    const data = await loadRunData(config, base.dataRoot);
    if (data.pairs.length < config.train.batch_size) throw new Error(`only ${data.pairs.length} training pairs, fewer than train.batch_size ${config.train.batch_size}`);
    const maxLength = pairMaxLength(config);
    const modelConfig = twoTowerConfigFrom(config, base.encoder);
    const { tokenizer } = base;
    const modelJson: RunModelJsons['two-tower'] = { kind: 'two-tower', ...modelConfig, maxLength, ...lineageOf(base.init) };
    return {
      modelJson,
      tokenizer,
      describeData: () => describePairData(data),
      dataFiles: [...base.files, ...data.filesRead],
      start({ resuming, parallel }) {
        const model = new TwoTowerModel(modelConfig);
        const kinded: KindedModel = { kind: 'two-tower', model, json: modelJson };
        if (base.init !== null && !resuming) write(formatInitReport(applyInitSource(kinded, base.init)));
        const loss = createWeightedLoss(config.loss);
        const { pairs, pool } = tokenizePairs(data, tokenizer, (type, text) => model.prompt(type, text), maxLength);
        const embedder = new ModelEmbedder(model, tokenizer, { maxLength, batchSize: 256, precision: config.train.precision, device: config.train.device });
        const hard = config.data.hard_negatives;
        const strategy = new TwoTowerStrategy({
          model,
          loss,
          pairs,
          batches: stepBatches(createPairBatchSource(pairs, data.pairRanges, config), config, parallel),
          padId: tokenizer.padId,
          padTo: config.data.padding === 'max_length' ? maxLength : null,
          maskSameGroup: config.train.mask_same_group,
          device: config.train.device,
          hardNegatives: hard.k > 0 ? { k: hard.k, refreshEvery: hard.refresh_every, startStep: hard.start_step, pool, miner: createNegativeMiner(pool), embedder } : null,
          gather: parallel !== undefined && gathersNegatives(config.loss) ? { group: parallel.group, timed: parallel.timed } : null,
        });
        return {
          model: kinded,
          strategy,
          evaluate: data.evalSplits.length === 0 ? null : (step) => evaluateSplitsWithModel(data.evalSplits, embedder, { sampled: step < config.train.steps }),
          summarize(end, metrics, runId) {
            // Beside every neural number, BM25's on the same (full) split, and the hybrid's other lexical ranker.
            const lexical = lexicalBaselinesAfter(end.status, data.evalSplits);
            return {
              fields: { ...lexical, trainingPairs: data.pairCounts, decontaminatedPairs: data.decontaminated, badRows: data.badRows.toJSON() },
              table: formatSummaryTable({ runId, metrics, ...lexical }),
            };
          },
          dispose() {
            strategy.dispose();
            loss.dispose();
          },
        };
      },
    };
  },
  evaluator(config, loaded) {
    if (loaded.kind !== 'two-tower') throw new Error(`${loaded.runPath}: a ${loaded.kind} model in a twotower run`);
    const embedder = new ModelEmbedder(loaded.model, loaded.tokenizer, { maxLength: loaded.json.maxLength, batchSize: 256, precision: config.train.precision, device: config.train.device });
    return {
      evaluate: (splits) => evaluateSplitsWithModel(splits, embedder, { sampled: false }),
      hybrid: (splits) => hybridReport(splits, embedder, DEFAULT_HYBRID),
      dispose: () => {},
    };
  },
};
