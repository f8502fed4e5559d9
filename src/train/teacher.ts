/**
 * The teacher of a distillation run (`distill.teacher`): a Kiln run (a two-tower bi-encoder or
 * a cross-encoder), a Hugging Face BERT directory (a bi-encoder with its sentence-transformers
 * pooling, mean by default, and a cosine head), or a two-tower model exported by `kiln export`
 * (onnxruntime; its embeddings of every training text are computed before the first step,
 * because onnxruntime runs asynchronously and the training loop does not).
 *
 * The teacher never trains: it runs in eval mode under `noGrad`, and what it computes is kept
 * by content hash (teacher-cache.ts), so each text or pair is encoded once per teacher:
 *
 *   bi-encoder      embed(side, type, texts) → head embeddings [N, Ht]; matrix(q, d) → [B, C] scores
 *   cross-encoder   score(queries, docs) → logits [N]
 *   both            states(ids) → hidden states and attention maps for layer transfer (not cached:
 *                   L × [N, T, H] per batch is too large to keep)
 *
 * A Kiln run's teacher runs eagerly on libtorch; its export runs in onnxruntime. bench/infer.ts
 * measures the two on the same model (BENCHMARKS.md).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { fromTypedArray, noGrad, type Tensor } from '../engine/index.js';
import { ConfigError } from '../config/errors.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { ModelEmbedder } from '../eval/embedder.js';
import { CrossEncoderScorer } from '../eval/rerank.js';
import {
  CrossEncoderModel,
  loadRunModel,
  readRunModelJson,
  RunModelError,
  TwoTowerModel,
  type BertEncoder,
  type EncodedBatch,
  type EncoderConfig,
  type EncoderStates,
  type KindedModel,
  type RunModelJson,
  type Side,
} from '../models/index.js';
import { HuggingFaceImportError, isHuggingFaceDirectory } from '../models/hf-checkpoint.js';
import { CARD_FORMAT, parseModelCard, type TwoTowerCard } from '../export/card.js';
import { ExportedModel } from '../serve/exported-model.js';
import { RunDirectory } from '../track/run-dir.js';
import { applyInitSource, resolveInitSource } from './init-from.js';
import { embeddingKey, pairKey, TeacherCache } from './teacher-cache.js';

export type TeacherOrigin = 'kiln-run' | 'hugging-face' | 'onnx';

interface TeacherBase {
  /** The resolved directory. */
  path: string;
  origin: TeacherOrigin;
  /** A hash of the teacher's configuration and weights: its cache entries are valid for this teacher only. */
  fingerprint: string;
  parameterCount: number;
  encoderConfig: EncoderConfig;
  /** The encoder that layer transfer reads, and that `student_init: teacher_layers` copies (null: an exported teacher). */
  encoder: BertEncoder | null;
  tokenizer: WordPieceTokenizer;
  /** The teacher run's final metrics (summary.json), when it is a Kiln run that has them. */
  metrics: Record<string, number>;
  /** Hidden states and attention maps of `batch` (token ids from the student's tokenizer), under noGrad (eager teachers). */
  states(batch: EncodedBatch, tokenTypeIds?: Tensor): EncoderStates;
  dispose(): void;
}

export interface BiEncoderTeacher extends TeacherBase {
  kind: 'bi-encoder';
  /** The eager model (null: an exported teacher). */
  model: TwoTowerModel | null;
  maxLength: { query: number; doc: number };
  /** Head embeddings [N, Ht] of texts of one input type, row-major, cached. */
  embed(side: Side, inputType: string, texts: readonly string[]): Float32Array;
  /** The teacher's scores [B, C] of embeddings from `embed`. */
  matrix(queries: Float32Array, candidates: Float32Array): Tensor;
  cache: TeacherCache;
}

export interface CrossEncoderTeacher extends TeacherBase {
  kind: 'cross-encoder';
  model: CrossEncoderModel;
  maxLength: number;
  /** Logits of (queries[i], docs[i]), cached. */
  score(queries: readonly string[], docs: readonly string[]): Float32Array;
  cache: TeacherCache;
}

export type Teacher = BiEncoderTeacher | CrossEncoderTeacher;

const KEY = 'distill.teacher';

/** Hashes the files that define a model: its config and its weights (streamed, so a large file is not held twice). */
function fingerprintOf(files: string[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    if (!existsSync(file)) continue;
    hash.update(`${file.split('/').pop()}\u0000${statSync(file).size}\u0000`);
    hash.update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 32);
}

function runStates(encoder: BertEncoder, batch: EncodedBatch, tokenTypeIds?: Tensor): EncoderStates {
  const states: EncoderStates = { hidden: [], attentions: [] };
  const wasTraining = encoder.training;
  encoder.eval();
  try {
    noGrad(() => encoder.forward(batch.inputIds, batch.attentionMask, tokenTypeIds, states));
  } finally {
    encoder.train(wasTraining);
  }
  return states;
}

/** Resolves the teacher's directory; anything that is not a usable teacher is a config error (exit 2). */
export function resolveTeacherPath(reference: string): { path: string; origin: TeacherOrigin } {
  const path = RunDirectory.resolveReference(reference) ?? resolve(reference);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new ConfigError([`${KEY}: ${path} is not a directory; expected a Kiln run (runs/<id>, or runs/<name> for the newest completed run of that name), a \`kiln export\` directory or a Hugging Face BERT directory`]);
  }
  if (existsSync(join(path, 'model.json')) && (JSON.parse(readFileSync(join(path, 'model.json'), 'utf8')) as { format?: unknown }).format === CARD_FORMAT) {
    const card = parseModelCard(JSON.parse(readFileSync(join(path, 'model.json'), 'utf8')), join(path, 'model.json'));
    if (card.kind !== 'two-tower') throw new ConfigError([`${KEY}: ${path} is an exported ${card.kind}; an exported teacher must be a two-tower model (use the cross-encoder's run directory instead)`]);
    if (card.head === 'hadamard_mlp') throw new ConfigError([`${KEY}: ${path} has a hadamard_mlp head, whose scores are not a dot product of its embeddings; use its run directory instead`]);
    return { path, origin: 'onnx' };
  }
  if (existsSync(join(path, 'model.json'))) {
    let json: RunModelJson;
    try {
      json = readRunModelJson(path);
    } catch (error) {
      if (error instanceof RunModelError) throw new ConfigError([`${KEY}: ${error.message}`]);
      throw error;
    }
    const kind = json.kind;
    if (json.kind === 'cross-encoder' && json.residual !== undefined) {
      throw new ConfigError([`${KEY}: ${path} is a residual cross-encoder (cross_encoder.residual): its logits correct ${json.residual.run}'s scores and are no relevance score alone; a teacher must score pairs by itself`]);
    }
    if (kind === 'masked-lm') throw new ConfigError([`${KEY}: ${path} is a masked-lm run; a teacher must embed or score pairs (a two-tower or a cross-encoder run). To start a student from it, use model.init_from`]);
    if (!existsSync(join(path, 'model.safetensors'))) throw new ConfigError([`${KEY}: ${path}: model.safetensors is missing (the run has not saved a model yet)`]);
    return { path, origin: 'kiln-run' };
  }
  if (isHuggingFaceDirectory(path)) return { path, origin: 'hugging-face' };
  throw new ConfigError([`${KEY}: ${path} is neither a Kiln run (model.json, model.safetensors, tokenizer.json) nor a Hugging Face directory (config.json with model.safetensors)`]);
}

/**
 * Loads the teacher. `maxLength` is the student's (a Hugging Face teacher has none of its own);
 * `cacheDirectory` is where this run writes the teacher's outputs (null: memory only).
 */
export function loadTeacher(reference: string, options: { maxLength: { query: number; doc: number }; cacheDirectory: string | null; precomputed?: PrecomputedTeacher }): Teacher {
  const { path, origin } = resolveTeacherPath(reference);
  if (origin === 'onnx') {
    const pre = options.precomputed;
    if (pre === undefined) throw new Error(`${path}: an exported teacher's embeddings must be computed first (precomputeExportedTeacher)`);
    return exportedBiEncoder(pre, options.cacheDirectory);
  }
  if (origin === 'hugging-face') {
    let source;
    try {
      source = resolveInitSource(path);
    } catch (error) {
      if (error instanceof HuggingFaceImportError) throw new ConfigError([`${KEY}: ${error.message}`]);
      if (error instanceof ConfigError) throw new ConfigError(error.problems.map((p) => p.replace(/^model\.init_from/, KEY)));
      throw error;
    }
    const encoder = { ...source.encoder, hiddenDropout: 0, attentionDropout: 0 };
    const model = new TwoTowerModel({ encoder, pooling: source.pooling ?? 'mean', towers: 'shared', head: { type: 'cosine', mlpHidden: 0 }, prompts: {} });
    const kinded: KindedModel = { kind: 'two-tower', model, json: { kind: 'two-tower', ...model.config, maxLength: options.maxLength } };
    applyInitSource(kinded, source);
    const files = ['config.json', 'model.safetensors', 'modules.json', join('1_Pooling', 'config.json')].map((f) => join(path, f));
    return biEncoder(model, { path, origin, fingerprint: fingerprintOf(files), tokenizer: source.tokenizer, metrics: {}, maxLength: options.maxLength, cacheDirectory: options.cacheDirectory });
  }
  const loaded = loadRunModel(path);
  const fingerprint = fingerprintOf(['model.json', 'model.safetensors'].map((f) => join(path, f)));
  if (loaded.kind === 'two-tower') {
    return biEncoder(loaded.model, { path, origin, fingerprint, tokenizer: loaded.tokenizer, metrics: loaded.metrics, maxLength: loaded.json.maxLength, cacheDirectory: options.cacheDirectory });
  }
  if (loaded.kind === 'cross-encoder') {
    const model = loaded.model;
    model.eval();
    const maxLength = loaded.json.maxLength.pair;
    const scorer = new CrossEncoderScorer(model, loaded.tokenizer, { maxLength, batchSize: 128, precision: 'fp32', device: 'cpu' });
    const cache = new TeacherCache(fingerprint, 1, options.cacheDirectory);
    return {
      kind: 'cross-encoder',
      path,
      origin,
      fingerprint,
      parameterCount: model.parameterCount(),
      encoderConfig: model.encoder.config,
      encoder: model.encoder,
      tokenizer: loaded.tokenizer,
      metrics: loaded.metrics,
      model,
      maxLength,
      cache,
      score: (queries, docs) =>
        cache.lookup(
          queries.map((q, i) => pairKey(q, docs[i]!)),
          (missing) => scorer.scorePairs(missing.map((i) => queries[i]!), missing.map((i) => docs[i]!)),
        ),
      states: (batch, tokenTypeIds) => runStates(model.encoder, batch, tokenTypeIds),
      dispose: () => model.dispose(),
    };
  }
  loaded.model.dispose();
  throw new ConfigError([`${KEY}: ${path} is a ${loaded.kind} run; expected a two-tower or a cross-encoder run`]);
}

function biEncoder(
  model: TwoTowerModel,
  o: { path: string; origin: 'kiln-run' | 'hugging-face'; fingerprint: string; tokenizer: WordPieceTokenizer; metrics: Record<string, number>; maxLength: { query: number; doc: number }; cacheDirectory: string | null },
): BiEncoderTeacher {
  model.eval();
  const embedder = new ModelEmbedder(model, o.tokenizer, { maxLength: o.maxLength, batchSize: 256, precision: 'fp32', device: 'cpu' });
  const width = model.config.encoder.hiddenSize;
  const cache = new TeacherCache(o.fingerprint, width, o.cacheDirectory);
  return {
    kind: 'bi-encoder',
    path: o.path,
    origin: o.origin,
    fingerprint: o.fingerprint,
    parameterCount: model.parameterCount(),
    encoderConfig: model.config.encoder,
    encoder: model.queryEncoder,
    tokenizer: o.tokenizer,
    metrics: o.metrics,
    model,
    maxLength: o.maxLength,
    cache,
    embed: (side, inputType, texts) =>
      cache.lookup(
        texts.map((t) => embeddingKey(side, inputType, t)),
        (missing) => {
          const rows = embedder.embed(side, inputType, missing.map((i) => texts[i]!));
          try {
            return rows.toTypedArray<'float32'>() as Float32Array;
          } finally {
            rows.dispose();
          }
        },
      ),
    matrix: (queries, candidates) =>
      noGrad(() => {
        const q = fromTypedArray(queries, { shape: [queries.length / width, width] });
        const d = fromTypedArray(candidates, { shape: [candidates.length / width, width] });
        return model.head.matrix(q, d);
      }),
    states: (batch, tokenTypeIds) => runStates(model.queryEncoder, batch, tokenTypeIds),
    dispose: () => model.dispose(),
  };
}

/** An exported teacher's embeddings of every training text, computed in onnxruntime before training. */
export interface PrecomputedTeacher {
  path: string;
  card: TwoTowerCard;
  tokenizer: WordPieceTokenizer;
  fingerprint: string;
  entries: Map<string, Float32Array>;
  seconds: number;
}

/** Embeds each (side, input type, texts) group with the exported model; the session is released after. */
export async function precomputeExportedTeacher(path: string, groups: ReadonlyArray<{ side: Side; inputType: string; texts: readonly string[] }>): Promise<PrecomputedTeacher> {
  const started = performance.now();
  const model = await ExportedModel.load(path, { batchSize: 128 });
  const card = model.card;
  if (card.kind !== 'two-tower') throw new ConfigError([`${KEY}: ${path} is an exported ${card.kind}; expected a two-tower model`]);
  const entries = new Map<string, Float32Array>();
  try {
    for (const { side, inputType, texts } of groups) {
      const vectors = await model.embed(texts, { side, inputType });
      texts.forEach((text, i) => entries.set(embeddingKey(side, inputType, text), vectors[i]!));
    }
  } finally {
    await model.release();
  }
  const files = [...new Set(['model.json', ...Object.values(card.graphs)])].map((f) => join(path, f));
  return { path, card, tokenizer: model.tokenizer, fingerprint: fingerprintOf(files), entries, seconds: (performance.now() - started) / 1000 };
}

function exportedBiEncoder(pre: PrecomputedTeacher, cacheDirectory: string | null): BiEncoderTeacher {
  const { card } = pre;
  const width = card.dimension;
  const cache = new TeacherCache(pre.fingerprint, width, cacheDirectory);
  cache.seed(pre.entries);
  const unavailable = (): never => {
    throw new Error(`${pre.path}: an exported teacher has no eager encoder (layer transfer and student_init: teacher_layers need its run directory)`);
  };
  return {
    kind: 'bi-encoder',
    path: pre.path,
    origin: 'onnx',
    fingerprint: pre.fingerprint,
    parameterCount: card.parameters,
    encoderConfig: { ...card.encoder, hiddenDropout: 0, attentionDropout: 0, initStd: 0.02 },
    encoder: null,
    tokenizer: pre.tokenizer,
    metrics: card.metrics,
    model: null,
    maxLength: card.maxLength,
    cache,
    embed: (side, inputType, texts) =>
      cache.lookup(
        texts.map((t) => embeddingKey(side, inputType, t)),
        (missing) => {
          throw new Error(`${pre.path}: the exported teacher has no embedding of ${side} text ${JSON.stringify(texts[missing[0]!])} (${inputType}); its embeddings are computed before training for the training texts only`);
        },
      ),
    // The card's vectors are unit-norm for the cosine head and raw for the dot head: either way the score is q·d.
    matrix: (queries, candidates) =>
      noGrad(() => fromTypedArray(queries, { shape: [queries.length / width, width] }).matmul(fromTypedArray(candidates, { shape: [candidates.length / width, width] }).transpose(0, 1))),
    states: unavailable,
    dispose: () => {},
  };
}
