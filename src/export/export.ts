/**
 * `kiln export`: a trained run → a self-contained ONNX model directory (see card.ts).
 *
 * The graphs are emitted from the run's weights by Kiln's own builder (bert-graph.ts), so
 * export needs neither Python nor tracing. The directory is written under a temporary name
 * and renamed into place; an existing export at the same path is swapped out only after the
 * new one is complete, so a failed export never leaves a half-written model where a service
 * might load it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { noGrad } from '../engine/index.js';

import type { Module } from '../engine/nn/index.js';
import { loadRunModel, RunModelError, type LoadedRunModel } from '../models/index.js';
import { KILN_VERSION } from '../version.js';
import { writeDirectoryAtomic } from '../util/atomic-write.js';
import type { OnnxGraphBuilder } from './onnx-graph.js';
import type { GraphOperators, Quantization } from './bert-graph.js';
import { exportKindOf, type ExportableModel } from './kinds.js';
import { CARD_FORMAT, CARD_FORMAT_VERSION, parseModelCard, type CardDistillation, type ModelCard } from './card.js';

export const DEFAULT_OPSET = 17;

/** The input is not an exportable run (missing files, unknown model kind): a usage error, exit 2. */
export class ExportInputError extends Error {}

/**
 * Standard operators by default: onnxruntime fuses them itself when it loads the graph, and
 * measured here that was faster than Kiln's pre-fused contrib operators (fp32 1,580 against
 * 1,455 texts/s, int8 3,341 against 2,665; BENCHMARKS.md). `onnxruntime` emits the fused ones.
 */
export const DEFAULT_OPERATORS: GraphOperators = 'onnx';

export interface ExportOptions {
  quantize: Quantization;
  opset: number;
  /** Standard operators only, or onnxruntime's fused ones (default DEFAULT_OPERATORS). */
  operators?: GraphOperators;
}

export interface ExportSource {
  runId: string;
  runPath: string;
  metrics: Record<string, number>;
  /** The tokenizer.json object the model was trained with. */
  tokenizer: object;
  /** A distilled student's teacher and report (summary.json of a task: distill run). */
  distillation?: CardDistillation;
}

export type { ExportableModel } from './kinds.js';

/** Builds the graphs and the card and writes the directory `outDir` (atomically replacing any previous export there). */
export function exportModel(exportable: ExportableModel, source: ExportSource, outDir: string, options: ExportOptions): ModelCard {
  const built = buildExport(exportable, source, options);
  writeDirectoryAtomic(outDir, built.files);
  return built.card;
}

/** The card and every file of the export directory (model.json serialised from `card`). */
export interface BuiltExport {
  card: ModelCard;
  files: Map<string, Uint8Array>;
}

export function serialiseCard(card: ModelCard): Uint8Array {
  parseModelCard(card, 'model.json'); // the card we write must be one we can read
  return Buffer.from(`${JSON.stringify(card, null, 2)}\n`, 'utf8');
}

export function buildExport(exportable: ExportableModel, source: ExportSource, options: ExportOptions): BuiltExport {
  const operators = options.operators ?? DEFAULT_OPERATORS;
  const files = new Map<string, Uint8Array>();
  const serialise = (file: string, builder: OnnxGraphBuilder): void => {
    files.set(
      file,
      builder.build({
        producerVersion: KILN_VERSION,
        graphName: `${source.runId} ${file}`,
        docString: `Exported by kiln ${KILN_VERSION} from run ${source.runId}`,
        metadata: { 'kiln.source_run': source.runId, 'kiln.quantization': options.quantize, 'kiln.operators': operators, 'kiln.kind': exportable.kind },
      }),
    );
  };

  const kind = exportKindOf(exportable);
  const wasTraining = exportable.model.training;
  exportable.model.eval();
  try {
    // Reading weights (transposes, casts) needs no autograd history.
    noGrad(() => {
      for (const [file, graph] of kind.graphs(exportable as never, { ...options, operators })) serialise(file, graph);
    });
  } finally {
    exportable.model.train(wasTraining);
  }

  const digest = createHash('sha256');
  for (const [file, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) digest.update(file).update(bytes);
  const base = {
    format: CARD_FORMAT,
    formatVersion: CARD_FORMAT_VERSION,
    modelId: `${source.runId}@${digest.digest('hex').slice(0, 12)}`,
    kilnVersion: KILN_VERSION,
    exportedAt: new Date().toISOString(),
    opset: options.opset,
    quantization: options.quantize,
    operators,
    parameters: (exportable.model as Module).parameterCount(),
    source: { run: source.runId, path: source.runPath },
    metrics: source.metrics,
    tokenizer: 'tokenizer.json' as const,
    ...(source.distillation === undefined ? {} : { distillation: source.distillation }),
  };
  const card = { ...base, ...kind.card(exportable as never) } as ModelCard;
  files.set('model.json', serialiseCard(card));
  files.set('tokenizer.json', Buffer.from(JSON.stringify(source.tokenizer), 'utf8'));
  return { card, files };
}

/**
 * What `kiln export --format` writes: `onnx`, Kiln's own directory (this file: graphs, tokenizer,
 * model.json) served by `kiln embed`/`serve`; `sentence-transformers`, a Hugging Face directory
 * for sentence-transformers and transformers.js (sentence-transformers.ts).
 */
export const EXPORT_FORMATS = ['onnx', 'sentence-transformers'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Rebuilds a run's model (src/models/run-model.ts) and checks that its kind has graphs to export (in `format`, for the error's wording). */
export function loadExportableRun(runPath: string, format: ExportFormat = 'onnx'): { exportable: ExportableModel; source: ExportSource } {
  let loaded: LoadedRunModel;
  try {
    loaded = loadRunModel(runPath);
  } catch (error) {
    if (error instanceof RunModelError) throw new ExportInputError(error.message);
    throw error;
  }
  if (loaded.kind === 'masked-lm') {
    loaded.model.dispose();
    throw new ExportInputError(
      format === 'onnx'
        ? `${loaded.runPath}: a masked language model (task: mlm) has no serving graph; export the two-tower or cross-encoder run that starts from it (model.init_from)`
        : `${loaded.runPath}: cannot export as sentence-transformers: a masked language model (task: mlm) has no trained pooling or embedding; export the two-tower run that starts from it (model.init_from)`,
    );
  }
  if (loaded.kind === 'cross-encoder' && loaded.json.residual !== undefined) {
    loaded.model.dispose();
    throw new ExportInputError(
      `${loaded.runPath}: a residual cross-encoder (cross_encoder.residual) scores a correction to ${loaded.json.residual.run}'s scores, not relevance by itself, so its graph alone would serve wrong scores; export a cross-encoder trained without residual`,
    );
  }
  const exportable: ExportableModel = loaded.kind === 'two-tower' ? { kind: 'two-tower', model: loaded.model, maxLength: loaded.json.maxLength } : { kind: 'cross-encoder', model: loaded.model, maxLength: loaded.json.maxLength };
  return { exportable, source: { runId: loaded.runId, runPath: loaded.runPath, metrics: loaded.metrics, tokenizer: loaded.tokenizerJson, distillation: distillationOf(loaded.runPath) } };
}

/** The card's distillation section from a distill run's summary.json (undefined for any other run). */
function distillationOf(runPath: string): CardDistillation | undefined {
  const file = join(runPath, 'summary.json');
  if (!existsSync(file)) return undefined;
  const summary = JSON.parse(readFileSync(file, 'utf8')) as {
    distillation?: { teacher: { path: string; kind: 'bi-encoder' | 'cross-encoder'; parameters: number }; reduction: number; retention: Record<string, number>; gapBridged: Record<string, number> };
  };
  const d = summary.distillation;
  if (d === undefined) return undefined;
  return { teacher: d.teacher.path, teacherKind: d.teacher.kind, teacherParameters: d.teacher.parameters, reduction: d.reduction, retention: d.retention, gapBridged: d.gapBridged };
}

/** The default export directory of a run: `<run>/onnx` (fp32) or `<run>/onnx-int8`. */
export function defaultExportDir(runPath: string, quantize: Quantization): string {
  return join(resolve(runPath), quantize === 'int8' ? 'onnx-int8' : 'onnx');
}
