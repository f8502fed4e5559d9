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
import { join, resolve } from 'node:path';

import { noGrad } from '../engine/index.js';

import type { Module } from '../engine/nn/index.js';
import { loadRunModel, RunModelError, type CrossEncoderModel, type EncoderConfig, type LoadedRunModel, type TwoTowerModel } from '../models/index.js';
import { KILN_VERSION } from '../version.js';
import { writeDirectoryAtomic } from '../util/atomic-write.js';
import { OnnxGraphBuilder } from './onnx-graph.js';
import { emitBertEncoder, emitL2Normalize, emitLinear, emitMaskFloat, emitPooling, type Quantization } from './bert-graph.js';
import { CARD_FORMAT, CARD_FORMAT_VERSION, parseModelCard, type ModelCard } from './card.js';

export const DEFAULT_OPSET = 17;

/** The input is not an exportable run (missing files, unknown model kind): a usage error, exit 2. */
export class ExportInputError extends Error {}

export interface ExportOptions {
  quantize: Quantization;
  opset: number;
}

export interface ExportSource {
  runId: string;
  runPath: string;
  metrics: Record<string, number>;
  /** The tokenizer.json object the model was trained with. */
  tokenizer: object;
}

export type ExportableModel = { kind: 'two-tower'; model: TwoTowerModel; maxLength: { query: number; doc: number } } | { kind: 'cross-encoder'; model: CrossEncoderModel; maxLength: { pair: number } };

/** One tower's graph: (input_ids, attention_mask) → embedding [batch, H]. */
function twoTowerGraph(model: TwoTowerModel, side: 'query' | 'doc', options: ExportOptions): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder(options.opset);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const encoder = side === 'query' ? model.queryEncoder : model.docEncoder;
  const prefix = model.config.towers === 'shared' ? 'encoder' : `${side}_encoder`;
  const maskFloat = emitMaskFloat(g, attentionMask);
  const hidden = emitBertEncoder(g, encoder, { inputIds, attentionMask }, maskFloat, prefix, options.quantize);
  const pooled = emitPooling(g, model.config.pooling, hidden, maskFloat, inputIds);
  // The head's `embed`: the cosine head stores unit vectors; dot and Hadamard-MLP heads store the pooled vector.
  const embedding = model.config.head.type === 'cosine' ? emitL2Normalize(g, pooled) : pooled;
  g.output(embedding, 'embedding', 'float32', ['batch', model.config.encoder.hiddenSize]);
  return g;
}

/** (input_ids, attention_mask, token_type_ids) → score [batch] (a logit). */
function crossEncoderGraph(model: CrossEncoderModel, options: ExportOptions): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder(options.opset);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const tokenTypeIds = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
  const maskFloat = emitMaskFloat(g, attentionMask);
  const hidden = emitBertEncoder(g, model.encoder, { inputIds, attentionMask, tokenTypeIds }, maskFloat, 'encoder', options.quantize);
  const pooled = emitPooling(g, model.config.pooling, hidden, maskFloat, inputIds);
  // The one-column classifier stays fp32 even in int8 graphs: it is H weights, and the score's last layer.
  const logits = g.scoped('classifier', () => emitLinear(g, pooled, model.classifier, 'classifier', 'none'));
  g.output(g.squeeze(logits, [1]), 'score', 'float32', ['batch']);
  return g;
}

function encoderCardFields(encoder: EncoderConfig): ModelCard['encoder'] {
  const { vocabSize, hiddenSize, numLayers, numHeads, intermediateSize, maxPositions, typeVocabSize, layerNormEps, padId } = encoder;
  return { vocabSize, hiddenSize, numLayers, numHeads, intermediateSize, maxPositions, typeVocabSize, layerNormEps, padId };
}

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
  const files = new Map<string, Uint8Array>();
  const serialise = (file: string, builder: OnnxGraphBuilder): void => {
    files.set(
      file,
      builder.build({
        producerVersion: KILN_VERSION,
        graphName: `${source.runId} ${file}`,
        docString: `Exported by kiln ${KILN_VERSION} from run ${source.runId}`,
        metadata: { 'kiln.source_run': source.runId, 'kiln.quantization': options.quantize, 'kiln.kind': exportable.kind },
      }),
    );
  };

  const graphFiles: Record<string, string> =
    exportable.kind === 'cross-encoder' ? { score: 'model.onnx' } : exportable.model.config.towers === 'shared' ? { query: 'model.onnx', doc: 'model.onnx' } : { query: 'query.onnx', doc: 'doc.onnx' };
  const wasTraining = exportable.model.training;
  exportable.model.eval();
  try {
    // Reading weights (transposes, casts) needs no autograd history.
    noGrad(() => {
      if (exportable.kind === 'two-tower') {
        if (exportable.model.config.towers === 'shared') serialise('model.onnx', twoTowerGraph(exportable.model, 'doc', options));
        else {
          serialise('query.onnx', twoTowerGraph(exportable.model, 'query', options));
          serialise('doc.onnx', twoTowerGraph(exportable.model, 'doc', options));
        }
      } else {
        serialise('model.onnx', crossEncoderGraph(exportable.model, options));
      }
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
    parameters: (exportable.model as Module).parameterCount(),
    source: { run: source.runId, path: source.runPath },
    metrics: source.metrics,
    tokenizer: 'tokenizer.json' as const,
  };
  const card: ModelCard =
    exportable.kind === 'two-tower'
      ? {
          ...base,
          kind: 'two-tower',
          encoder: encoderCardFields(exportable.model.config.encoder),
          pooling: exportable.model.config.pooling,
          towers: exportable.model.config.towers,
          head: exportable.model.config.head.type,
          normalized: exportable.model.config.head.type === 'cosine',
          dimension: exportable.model.config.encoder.hiddenSize,
          prompts: exportable.model.config.prompts,
          maxLength: exportable.maxLength,
          graphs: graphFiles as { query: string; doc: string },
        }
      : {
          ...base,
          kind: 'cross-encoder',
          encoder: encoderCardFields(exportable.model.config.encoder),
          pooling: exportable.model.config.pooling,
          maxLength: exportable.maxLength,
          graphs: graphFiles as { score: string },
        };
  files.set('model.json', serialiseCard(card));
  files.set('tokenizer.json', Buffer.from(JSON.stringify(source.tokenizer), 'utf8'));
  return { card, files };
}

/** Rebuilds a run's model (src/models/run-model.ts) and checks that its kind has graphs to export. */
export function loadExportableRun(runPath: string): { exportable: ExportableModel; source: ExportSource } {
  let loaded: LoadedRunModel;
  try {
    loaded = loadRunModel(runPath);
  } catch (error) {
    if (error instanceof RunModelError) throw new ExportInputError(error.message);
    throw error;
  }
  if (loaded.kind === 'masked-lm') {
    loaded.model.dispose();
    throw new ExportInputError(`${loaded.runPath}: a masked language model (task: mlm) has no serving graph; export the two-tower or cross-encoder run that starts from it (model.init_from)`);
  }
  const exportable: ExportableModel = loaded.kind === 'two-tower' ? { kind: 'two-tower', model: loaded.model, maxLength: loaded.json.maxLength } : { kind: 'cross-encoder', model: loaded.model, maxLength: loaded.json.maxLength };
  return { exportable, source: { runId: loaded.runId, runPath: loaded.runPath, metrics: loaded.metrics, tokenizer: loaded.tokenizerJson } };
}

/** The default export directory of a run: `<run>/onnx` (fp32) or `<run>/onnx-int8`. */
export function defaultExportDir(runPath: string, quantize: Quantization): string {
  return join(resolve(runPath), quantize === 'int8' ? 'onnx-int8' : 'onnx');
}
