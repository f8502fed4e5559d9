/**
 * `kiln export` end to end: rebuild the run's model, emit the graphs, write them to a staging
 * directory, load that directory in onnxruntime and check it against the eager model before
 * it is renamed into place:
 *
 *   parity      on real texts from the run's evaluation splits (its config and data root);
 *               fp32: max |Δ| ≤ 1e-4, int8: cosine ≥ 0.99 per vector
 *   evaluation  (--eval) every split's metrics, eager and exported; an int8 export may lose at
 *               most 1 point on each split's main metric (the first it lists)
 *
 * A failed check removes the staging directory and leaves any earlier export untouched. The
 * results go into the card's `checks`.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { loadResolvedRunConfig } from '../config/index.js';
import { createContext } from '../data/files.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { ModelEmbedder } from '../eval/embedder.js';
import { evaluateSplitsWithModel } from '../eval/splits.js';
import { ExportedModel } from '../serve/exported-model.js';
import { loadEvalSplits, resolveConfigDataRoot, type EvalSplit } from '../train/setup.js';
import type { ModelCard } from './card.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { evaluateExported } from './evaluate-exported.js';
import { buildExport, defaultExportDir, loadExportableRun, serialiseCard, type ExportableModel, type ExportOptions } from './export.js';
import { moveIntoPlace, writeStagingDirectory } from '../util/atomic-write.js';
import { checkParity, type ParityInputs, type ParityReport } from './parity.js';

/** Texts for a parity check when the run's data is not available: job titles, skills and sentences of the kinds Kiln trains on. */
export const BUILT_IN_PARITY_TEXTS: readonly string[] = [
  'Senior Software Engineer (Java, Spring Boot)',
  'registered nurse - night shift',
  'Data Scientist m/w/d',
  'manage a team of warehouse operatives',
  'use spreadsheets software',
  'You will design and maintain CI/CD pipelines on Kubernetes and AWS.',
  'Experience with SQL, Python and stakeholder communication is required.',
  'électricien bâtiment',
  'customer service',
  'apply health and safety standards',
  'Werkstudent Marketing',
  'a',
];

export const MAIN_METRIC_MAX_DROP_POINTS = 1;

export interface ExportRunOptions extends ExportOptions {
  outDir?: string;
  /** onnxruntime intra-op threads for the parity check and --eval (default: onnxruntime's, all cores). */
  threads?: number;
  dataRoot?: string;
  /** Skip the parity check (not recommended). */
  skipParity?: boolean;
  /** Also evaluate eager and exported models on the run's full evaluation splits. */
  evaluate?: boolean;
  /** Texts per side for the parity check (default 256). */
  parityTexts?: number;
  log?: (line: string) => void;
}

export interface ExportRunResult {
  outDir: string;
  card: ModelCard;
  parity: ParityReport | null;
  parityInputs: string;
}

export class ExportCheckError extends Error {}

/** Every k-th element so the sample spans the whole list (deterministic). */
function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  const step = items.length / count;
  return Array.from({ length: count }, (_, i) => items[Math.floor(i * step)]!);
}

function parityInputsFromSplits(splits: readonly EvalSplit[], count: number): ParityInputs {
  const retrieval = splits.flatMap((s) => (s.kind === 'retrieval' ? [s.split] : []));
  const queries = retrieval.flatMap((s) => s.queries.map((q) => ({ type: s.queryType, text: q.text })));
  const docs = retrieval.flatMap((s) => s.corpus.map((d) => ({ type: s.docType, text: d.text })));
  const pairs = retrieval.flatMap((s) => s.queries.filter((q) => q.relevant.length > 0).map((q) => [q.text, s.corpus[q.relevant[0]!]!.text] as const));
  const firstQueryType = retrieval[0]?.queryType ?? 'text';
  const firstDocType = retrieval[0]?.docType ?? 'text';
  return {
    query: { inputType: firstQueryType, texts: spread(queries.filter((q) => q.type === firstQueryType).map((q) => q.text), count) },
    doc: { inputType: firstDocType, texts: spread(docs.filter((d) => d.type === firstDocType).map((d) => d.text), count) },
    pairs: spread(pairs, count),
  };
}

function builtInParityInputs(): ParityInputs {
  const texts = BUILT_IN_PARITY_TEXTS;
  return { query: { inputType: 'text', texts }, doc: { inputType: 'text', texts }, pairs: texts.map((t, i) => [t, texts[(i + 1) % texts.length]!] as const) };
}

/**
 * Texts for a parity check of a run's export: `count` per side from the run's evaluation splits
 * when its config and data are at hand, else the built-in ones; `description` says which, for
 * the log and the card.
 */
export async function parityInputsForRun(runPath: string, dataRoot: string | undefined, count = 256): Promise<{ inputs: ParityInputs; description: string }> {
  const loaded = await runEvalSplits(runPath, dataRoot);
  return typeof loaded === 'string'
    ? { inputs: builtInParityInputs(), description: `built-in texts (the run's data was not available: ${loaded})` }
    : { inputs: parityInputsFromSplits(loaded, count), description: "texts from the run's evaluation splits" };
}

/** The run's evaluation splits, or why they could not be loaded (no config, no data root, a data error). */
async function runEvalSplits(runPath: string, dataRoot: string | undefined): Promise<EvalSplit[] | string> {
  if (!existsSync(join(runPath, 'config.yaml'))) return 'the run has no config.yaml';
  const { config } = loadResolvedRunConfig(runPath);
  let root: string;
  try {
    root = resolveConfigDataRoot(config, dataRoot);
  } catch (error) {
    return (error as Error).message;
  }
  const ctx = createContext({ dataRoot: root, onBadRow: 'skip', seed: config.seed });
  try {
    return await loadEvalSplits(config, root, ctx.report);
  } catch (error) {
    return (error as Error).message;
  }
}

export async function exportRun(runPath: string, options: ExportRunOptions): Promise<ExportRunResult> {
  const outDir = options.outDir ?? defaultExportDir(runPath, options.quantize);
  const { exportable, source } = loadExportableRun(runPath);
  try {
    const built = buildExport(exportable, source, { quantize: options.quantize, opset: options.opset, operators: options.operators });
    const staging = writeStagingDirectory(outDir, built.files);
    try {
      const card = built.card;
      let result = { parity: null as ParityReport | null, parityInputs: 'skipped' };
      if (!options.skipParity || options.evaluate === true) {
        result = await checkStagedExport(exportable, staging, card, runPath, outDir, options);
        writeFileAtomic(join(staging, 'model.json'), [serialiseCard(card)]); // with card.checks
      }
      moveIntoPlace(staging, outDir);
      return { outDir, card, ...result };
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw error;
    }
  } finally {
    exportable.model.dispose();
  }
}

/** Runs the staged export in onnxruntime beside the eager model; records the checks in `card.checks` and throws ExportCheckError on a failure. */
async function checkStagedExport(
  exportable: ExportableModel,
  staging: string,
  card: ModelCard,
  runPath: string,
  outDir: string,
  options: ExportRunOptions,
): Promise<{ parity: ParityReport | null; parityInputs: string }> {
  const log = options.log ?? (() => {});
  const loaded = await runEvalSplits(runPath, options.dataRoot);
  const splits = typeof loaded === 'string' ? null : loaded;
  if (options.evaluate === true && splits === null) throw new ExportCheckError(`--eval needs the run's config.yaml and its data (set --data-root or KILN_DATA): ${loaded as string}`);
  let parity: ParityReport | null = null;
  let parityInputs = 'skipped';
  const exported = await ExportedModel.load(staging, options.threads === undefined ? {} : { threads: options.threads });
  const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(staging, 'tokenizer.json'));
  try {
    if (!options.skipParity) {
      const inputs = splits !== null ? parityInputsFromSplits(splits, options.parityTexts ?? 256) : builtInParityInputs();
      parityInputs = splits !== null ? "texts from the run's evaluation splits" : `built-in texts (the run's data was not available: ${loaded as string})`;
      parity = await checkParity(exportable, exported, tokenizer, inputs);
      log(`parity (${parityInputs}): ${parity.outputs} outputs, max |Δ| ${parity.maxAbsDiff.toExponential(2)}, min cosine ${parity.minCosine.toFixed(6)} → ${parity.passed ? 'pass' : 'FAIL'} (${parity.criterion})`);
      card.checks = { ...card.checks, parity: { inputs: parityInputs, outputs: parity.outputs, maxAbsDiff: parity.maxAbsDiff, minCosine: parity.minCosine, criterion: parity.criterion, passed: parity.passed } };
      if (!parity.passed) throw new ExportCheckError(`parity check failed: max |Δ| ${parity.maxAbsDiff}, min cosine ${parity.minCosine}; required ${parity.criterion}. Nothing was written to ${outDir}.`);
    }
    if (options.evaluate === true && splits !== null) {
      if (exportable.kind !== 'two-tower') throw new ExportCheckError('--eval evaluates two-tower models on retrieval splits; a cross-encoder export is checked by parity only');
      const embedder = new ModelEmbedder(exportable.model, tokenizer, { maxLength: exportable.maxLength, batchSize: 256, precision: 'fp32', device: 'cpu' });
      log('evaluating the eager model (fp32) on the full splits…');
      const eager = evaluateSplitsWithModel(splits, embedder, { sampled: false });
      log('evaluating the exported model on the full splits…');
      const onnx = await evaluateExported(exported, splits);
      let maxDrop = 0;
      for (const { spec } of splits) {
        const main = `${spec.name}/${spec.metrics[0]}`;
        if (eager[main] !== undefined && onnx[main] !== undefined) maxDrop = Math.max(maxDrop, 100 * (eager[main]! - onnx[main]!));
      }
      for (const name of Object.keys(eager)) log(`  ${name.padEnd(24)} eager ${(100 * eager[name]!).toFixed(2).padStart(6)}  onnx ${(100 * (onnx[name] ?? NaN)).toFixed(2).padStart(6)}`);
      const passed = maxDrop <= MAIN_METRIC_MAX_DROP_POINTS;
      const criterion = `each split's main metric at most ${MAIN_METRIC_MAX_DROP_POINTS} point below the eager model`;
      card.checks = { ...card.checks, evaluation: { eager, exported: onnx, maxDropPoints: maxDrop, criterion, passed } };
      if (!passed) throw new ExportCheckError(`evaluation check failed: a main metric dropped ${maxDrop.toFixed(2)} points; required ${criterion}. Nothing was written to ${outDir}.`);
    }
  } finally {
    await exported.release();
  }
  return { parity, parityInputs };
}
