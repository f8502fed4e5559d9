/**
 * `kiln train` for two-tower configs: config → data → batches → model → loss → optimizer,
 * with the run directory and the progress output watching through loop hooks.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { manualSeed, saveSafetensors, setNumThreads, getNumThreads, noGrad } from '../engine/index.js';
import { TwoTowerModel } from '../models/index.js';
import { createWeightedLoss } from '../losses/index.js';
import { RunDirectory } from '../track/run-dir.js';
import { RunDirectoryHook } from '../track/run-hook.js';
import { ModelEmbedder } from '../eval/embedder.js';
import { evaluateSplitsWithBm25, evaluateSplitsWithLexical, evaluateSplitsWithModel, type EvalSplit } from '../eval/splits.js';
import { KILN_VERSION } from '../version.js';
import { loadRunData, twoTowerConfigFrom, type RunData } from './setup.js';
import { runTraining, type EndEvent, type TrainHooks } from './loop.js';
import { ProgressHook, formatMetrics } from './progress.js';
import { TwoTowerStrategy, type NegativePool, type TokenizedPairs } from './strategies/two-tower.js';
import { createPairBatchSource, createNegativeMiner } from './data-adapters.js';
import { groupIndices } from '../data/batch.js';
import type { KilnConfig } from '../config/schema.js';

export interface LoadedRunConfig {
  config: KilnConfig;
  resolvedYaml: string;
}

export interface TrainRunOptions {
  dataRoot?: string;
  runsRoot: string;
  /** Path of a run directory to resume (its config.yaml was loaded by the caller). */
  resumeRun?: string;
  plainProgress: boolean;
  write?: (line: string) => void;
  /** Extra hooks (tests, a run store). */
  hooks?: TrainHooks[];
}

export interface RunSummary {
  runId: string;
  runPath: string;
  status: EndEvent['status'];
  message: string;
  steps: number;
  /** The model's metrics, and the hybrid's as `<eval name>/hybrid/<metric>`. */
  metrics: Record<string, number>;
  bm25: Record<string, number>;
  /** Character TF-IDF on the splits whose hybrid fuses it (BM25 is always beside). */
  tfidf_char: Record<string, number>;
}

/**
 * The thread policy measured fastest here (BENCHMARKS.md): in fp32 the matmuls run in OpenBLAS,
 * which keeps its own threads, so one libtorch thread is fastest; bf16 matmuls run in oneDNN on
 * libtorch's intra-op pool, which wants every core.
 */
export function applyThreadPolicy(threads: 'auto' | number, precision: 'fp32' | 'bf16'): number {
  const cores = availableParallelism(); // respects CPU affinity (containers, taskset)
  const n = threads === 'auto' ? (precision === 'bf16' ? cores : 1) : threads;
  if (getNumThreads() !== n) setNumThreads(n);
  return n;
}

/** Tokenises the pairs once (each distinct text once) and builds the negative pool. */
export function tokenizePairs(data: RunData, model: TwoTowerModel, maxLength: { query: number; doc: number }): { pairs: TokenizedPairs; pool: NegativePool } {
  const { index: group } = groupIndices(data.pairs.map((p) => p.group));
  const poolIndex = new Map<string, number>();
  const pool: NegativePool = { docIds: [], group: new Int32Array(0), texts: [], types: [] };
  const poolGroups: number[] = [];
  const queryTexts = data.pairs.map((p) => model.prompt(p.queryType, p.query));
  const queryIds = data.tokenizer.encodeBatch(queryTexts, maxLength.query);
  const docTexts = data.pairs.map((p) => model.prompt(p.docType, p.doc));
  const docIds = data.tokenizer.encodeBatch(docTexts, maxLength.doc);
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
  return { pairs: { queryIds, docIds, group, docPoolIndex }, pool };
}

export async function trainTwoTower(loaded: LoadedRunConfig, options: TrainRunOptions): Promise<RunSummary> {
  const { config } = loaded;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const threads = applyThreadPolicy(config.train.threads, config.train.precision);

  // Everything that can fail on bad input happens before the run directory exists.
  const loadStart = performance.now();
  const data = await loadRunData(config, options.dataRoot);
  if (data.pairs.length < config.train.batch_size) {
    throw new Error(`only ${data.pairs.length} training pairs, fewer than train.batch_size ${config.train.batch_size}`);
  }
  const modelConfig = twoTowerConfigFrom(config, data.tokenizer);
  const maxLength = { query: config.data.max_length, doc: config.data.doc_max_length ?? config.data.max_length };

  const run = options.resumeRun !== undefined ? RunDirectory.open(options.resumeRun) : RunDirectory.create(options.runsRoot, config.name);
  if (options.resumeRun === undefined) {
    run.writeText('config.yaml', loaded.resolvedYaml);
    run.writeJson('model.json', { kind: 'two-tower', kilnVersion: KILN_VERSION, ...modelConfig, maxLength });
    run.writeJson('tokenizer.json', data.tokenizer.toJSON());
  } else if (!existsSync(run.file('model.json'))) {
    throw new Error(`${run.path}: model.json is missing; cannot resume`);
  }

  manualSeed(config.seed);
  const model = new TwoTowerModel(modelConfig);
  const loss = createWeightedLoss(config.loss);
  const { pairs, pool } = tokenizePairs(data, model, maxLength);
  const embedder = new ModelEmbedder(model, data.tokenizer, { maxLength, batchSize: 256, precision: config.train.precision, device: config.train.device });
  const hardNegatives =
    config.data.hard_negatives.k > 0
      ? {
          k: config.data.hard_negatives.k,
          refreshEvery: config.data.hard_negatives.refresh_every,
          startStep: config.data.hard_negatives.start_step,
          pool,
          miner: createNegativeMiner(pool),
          embedder,
        }
      : null;
  const strategy = new TwoTowerStrategy({
    model,
    loss,
    pairs,
    batches: createPairBatchSource(pairs, data.pairRanges, config),
    padId: data.tokenizer.padId,
    padTo: config.data.padding === 'max_length' ? maxLength : null,
    maskSameGroup: config.train.mask_same_group,
    device: config.train.device,
    hardNegatives,
  });
  write(
    `run ${run.id}: ${data.pairs.length} training pairs (${Object.entries(data.pairCounts).map(([r, n]) => `${r} ${n}`).join(', ')}), ` +
      `${(model.parameterCount() / 1e6).toFixed(2)}M parameters, ${config.train.precision}, ${threads} thread(s); data ready in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`,
  );
  if (data.badRows.total > 0) write(data.badRows.summary());
  if (data.decontaminated > 0) write(`dropped ${data.decontaminated} training pair(s) whose query is also an evaluation query`);

  let lastMetrics: Record<string, number> = {};
  const evaluate = data.evalSplits.length === 0
    ? null
    : (step: number): Record<string, number> => {
        lastMetrics = evaluateSplitsWithModel(data.evalSplits, embedder, { sampled: step < config.train.steps });
        return lastMetrics;
      };
  const saveModelWeights = (step: number): void => {
    noGrad(() => saveSafetensors(run.file('model.safetensors'), model.stateDict(), { step: String(step), run: run.id }));
  };
  const stopping = config.train.early_stopping;
  const end = runTraining({
    strategy,
    options: {
      steps: config.train.steps,
      gradAccum: config.train.grad_accum,
      schedule: { lr: config.train.lr, warmupSteps: config.train.warmup_steps, schedule: config.train.schedule, minLrRatio: config.train.min_lr_ratio },
      weightDecay: config.train.weight_decay,
      betas: config.train.betas,
      eps: config.train.eps,
      clipGradNorm: config.train.clip_grad_norm,
      precision: config.train.precision,
      device: config.train.device,
      seed: config.seed,
      evalEvery: config.train.eval_every,
      checkpointEvery: config.train.checkpoint_every,
      earlyStopping: stopping === null ? null : { metric: stopping.metric, mode: stopping.mode, patience: stopping.patience, minDelta: stopping.min_delta },
      selectionMetric: stopping?.metric ?? null,
    },
    evaluate,
    runPath: run.path,
    saveModelWeights,
    hooks: [new ProgressHook({ logEvery: config.train.log_every, plain: options.plainProgress, write }), new RunDirectoryHook(run, config.train.log_every), ...(options.hooks ?? [])],
    resume: options.resumeRun !== undefined,
  });
  strategy.dispose();

  // Beside every neural number, BM25's on the same (full) split, and the hybrid's other lexical ranker.
  const lexical = end.status === 'diverged' ? { bm25: {}, tfidf_char: {} } : evaluateLexicalBaselines(data.evalSplits);
  const summary: RunSummary = { runId: run.id, runPath: run.path, status: end.status, message: end.message, steps: end.lastStep, metrics: lastMetrics, ...lexical };
  run.writeJson('summary.json', {
    ...summary,
    kilnVersion: KILN_VERSION,
    bestStep: end.bestStep,
    bestValue: end.bestValue,
    parameters: model.parameterCount(),
    trainingPairs: data.pairCounts,
    decontaminatedPairs: data.decontaminated,
    badRows: data.badRows.toJSON(),
    finishedAt: new Date().toISOString(),
  });
  write(formatSummaryTable(summary));
  model.dispose();
  loss.dispose();
  return summary;
}

/**
 * The lexical columns of a summary: BM25 on every split, and character TF-IDF on the splits
 * whose hybrid fuses it (on the others it would only cost time: about a minute on JobBERT).
 */
export function evaluateLexicalBaselines(splits: readonly EvalSplit[]): Pick<RunSummary, 'bm25' | 'tfidf_char'> {
  const tfidfSplits = splits.filter((s) => s.kind === 'retrieval' && s.hybrid?.lexical === 'tfidf_char');
  return { bm25: evaluateSplitsWithBm25(splits), tfidf_char: evaluateSplitsWithLexical(tfidfSplits, 'tfidf_char') };
}

/**
 * metric | kiln | hybrid | bm25 | tfidf_char, as percentages (×100); the hybrid and TF-IDF
 * columns only when some split has them, '-' where a split has not.
 */
export function formatSummaryTable(summary: Pick<RunSummary, 'metrics' | 'bm25' | 'runId'> & Partial<Pick<RunSummary, 'tfidf_char'>>): string {
  const hybridKey = (key: string): string => key.replace(/^([^/]+)\//, '$1/hybrid/');
  const keys = [...new Set([...Object.keys(summary.metrics).filter((k) => !k.includes('/hybrid/')), ...Object.keys(summary.bm25)])];
  if (keys.length === 0) return `run ${summary.runId}: no evaluation splits configured`;
  const columns: Array<[string, (key: string) => number | undefined]> = [
    ['kiln', (k) => summary.metrics[k]],
    ['hybrid', (k) => summary.metrics[hybridKey(k)]],
    ['bm25', (k) => summary.bm25[k]],
    ['tfidf_char', (k) => summary.tfidf_char?.[k]],
  ];
  const shown = columns.filter(([name, value]) => name === 'kiln' || name === 'bm25' || keys.some((k) => value(k) !== undefined));
  const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
  const width = Math.max(6, ...keys.map((k) => k.length));
  const lines = [[`${'metric'.padEnd(width)}`, ...shown.map(([name]) => name.padStart(Math.max(7, name.length)))].join('  ')];
  for (const k of keys) lines.push([k.padEnd(width), ...shown.map(([name, value]) => pct(value(k)).padStart(Math.max(7, name.length)))].join('  '));
  return `run ${summary.runId} (×100):\n${lines.join('\n')}`;
}

export { formatMetrics };
