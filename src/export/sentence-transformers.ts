/**
 * `kiln export --format sentence-transformers`: a two-tower run → a directory that
 * sentence-transformers, Hugging Face transformers and transformers.js load as they would a model
 * from the Hub, with Kiln's embeddings (shared tower, pooling, the cosine head's normalisation,
 * the prompts of each input type).
 *
 * Layout (SentenceTransformer.save in https://github.com/UKPLab/sentence-transformers, and
 * transformers' save_pretrained; the ONNX file where transformers.js looks for it,
 * https://huggingface.co/docs/transformers.js/custom_usage):
 *   config.json                       BertConfig (hf-checkpoint.ts, bertConfigFor)
 *   model.safetensors                 BertModel's tensors by BertModel's names (bertModelStateFrom),
 *                                     plus a zero pooler (see POOLER below)
 *   tokenizer.json                    the run's WordPiece tokenizer, truncating at max_seq_length
 *   tokenizer_config.json, special_tokens_map.json, vocab.txt   the same tokenizer for BertTokenizer
 *   modules.json                      Transformer → Pooling [→ Normalize for the cosine head]
 *   sentence_bert_config.json         max_seq_length
 *   1_Pooling/config.json             mean, cls or last-token pooling, as the run pools
 *   config_sentence_transformers.json prompts {input type: prefix}, similarity function
 *   onnx/model.onnx                   (input_ids, attention_mask, token_type_ids) → last_hidden_state
 *                                     [batch, sequence, H], from Kiln's graph builder (kinds.ts)
 *   README.md                         the model card (card.ts)
 *
 * Only a model that *is* a sentence-transformers model exports: one encoder for every text,
 * pooling, and a head whose `embed` is the identity (dot) or an L2 normalisation (cosine). Other
 * models fail with an ExportInputError naming the reason (exit 2).
 *
 * One maximum length: sentence-transformers truncates every text at max_seq_length, while Kiln
 * keeps one per side. The export uses the doc side's, which is what `kiln embed` uses by default;
 * the card says so when the query side's differed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import * as ort from 'onnxruntime-node';

import { noGrad, saveSafetensors, tidy, zeros, type Tensor } from '../engine/index.js';
import type { Module } from '../engine/nn/index.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { ModelEmbedder } from '../eval/embedder.js';
import { bertConfigFor, bertModelStateFrom, SENTENCE_TRANSFORMERS_POOLING, type PoolingMode, type TwoTowerModel } from '../models/index.js';
import { buildDirectoryAtomic, writeFileAtomic } from '../util/atomic-write.js';
import { KILN_VERSION } from '../version.js';
import { sentenceTransformersReadme, type ReadmeCard } from './card.js';
import { ExportInputError, loadExportableRun, type ExportableModel, type ExportSource } from './export.js';
import { EXPORT_KINDS, twoTowerGraph } from './kinds.js';
import { FP32_MAX_ABS_DIFF, type ParityInputs } from './parity.js';

export const SENTENCE_TRANSFORMERS_FORMAT = 'sentence-transformers';

/** The ONNX graph's place in the directory: where transformers.js loads an fp32 model from. */
export const ONNX_MODEL_FILE = 'onnx/model.onnx';

/** 1_Pooling/config.json's flags: every flag of the table the import reads, true for Kiln's pooling only. */
function poolingFlags(pooling: PoolingMode): Record<string, boolean> {
  return Object.fromEntries(Object.entries(SENTENCE_TRANSFORMERS_POOLING).map(([flag, mode]) => [flag, mode === pooling]));
}

/**
 * BertModel has a pooler (tanh of a dense layer over [CLS], `pooler_output`) that Kiln's encoder
 * lacks. sentence-transformers and transformers.js never read it, but transformers fills missing
 * weights with random ones and warns that the model needs training; zero weights instead make
 * `pooler_output` a deterministic 0 (tanh 0), and the card says it is not trained.
 */
const POOLER = ['pooler.dense.weight', 'pooler.dense.bias'] as const;

export interface SentenceTransformersOptions {
  opset: number;
}

/** A run exportable in this format: a two-tower model, narrowed. */
type TwoTowerExportable = Extract<ExportableModel, { kind: 'two-tower' }>;

/**
 * Why `exportable` has no sentence-transformers form (one sentence), or null when it has one.
 *
 * @example
 * sentenceTransformersObstacle({ kind: 'cross-encoder', model, maxLength: { pair: 256 } });
 * // 'a cross-encoder scores (query, doc) pairs jointly and has no per-text embedding, …'
 */
export function sentenceTransformersObstacle(exportable: ExportableModel): string | null {
  if (exportable.kind === 'cross-encoder') {
    return 'a cross-encoder scores (query, doc) pairs jointly and has no per-text embedding, which is what a sentence-transformers model computes';
  }
  const { towers, head } = exportable.model.config;
  if (towers !== 'shared') {
    return "the model has separate query and doc towers (towers: separate), while a sentence-transformers model embeds every text with one encoder";
  }
  if (head.type === 'hadamard_mlp') {
    return "its hadamard_mlp head scores a pair with an MLP over q ⊙ d, which sentence-transformers cannot express (it compares embeddings by cosine or dot product); train with head: cosine or dot";
  }
  return null;
}

/**
 * Kiln's prompt templates as sentence-transformers prompts: `{ input type: prefix }`, since
 * sentence-transformers encodes `prompt + text`. A template that is not `<prefix>{text}` (text in
 * the middle, twice, or absent) cannot be written as a prompt: ExportInputError.
 *
 * @example
 * promptPrefixes({ title: 'job title: {text}' }); // { title: 'job title: ' }
 */
export function promptPrefixes(prompts: Readonly<Record<string, string>>): Record<string, string> {
  const prefixes: Record<string, string> = {};
  for (const [name, template] of Object.entries(prompts)) {
    const prefix = template.slice(0, -'{text}'.length);
    if (!template.endsWith('{text}') || prefix.includes('{text}')) {
      throw new ExportInputError(
        `prompt '${name}' is ${JSON.stringify(template)}, which is not a prefix: sentence-transformers encodes prompt + text, so a template must end with {text} and contain it once; export with --format onnx, which keeps Kiln's templates`,
      );
    }
    prefixes[name] = prefix;
  }
  return prefixes;
}

// ---------------------------------------------------------------------------------------
// Tokenizer files
// ---------------------------------------------------------------------------------------

interface AddedToken {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedToken[];
  normalizer?: { type?: string; lowercase?: boolean; strip_accents?: boolean | null; handle_chinese_chars?: boolean; normalizers?: Array<{ type?: string }> } | null;
  model: { type: string; vocab: Record<string, number>; unk_token?: string };
  [key: string]: unknown;
}

/** Whether the tokenizer lowercases (BertNormalizer's flag, or a Lowercase normalizer in a sequence). */
function lowercases(normalizer: TokenizerJson['normalizer']): boolean {
  if (normalizer === null || normalizer === undefined) return false;
  if (normalizer.type === 'BertNormalizer') return normalizer.lowercase === true;
  if (normalizer.type === 'Lowercase') return true;
  return normalizer.type === 'Sequence' && (normalizer.normalizers ?? []).some((n) => n.type === 'Lowercase' || (n.type === 'BertNormalizer' && (n as { lowercase?: boolean }).lowercase === true));
}

/**
 * The tokenizer files of a Hugging Face BERT directory from the run's tokenizer.json: the same
 * file with truncation at `maxSeqLength` and batch-longest padding set (so that `tokenizers` used
 * on its own truncates as the model was trained), plus what `BertTokenizer` reads
 * (tokenizer_config.json, special_tokens_map.json, vocab.txt in id order).
 */
function tokenizerFiles(source: object, maxSeqLength: number, padId: number): Map<string, string> {
  const json = structuredClone(source) as TokenizerJson;
  const vocab = Object.entries(json.model.vocab).sort(([, a], [, b]) => a - b);
  vocab.forEach(([token, id], index) => {
    if (id !== index) throw new ExportInputError(`the run's tokenizer.json has no token with id ${index} (next is ${JSON.stringify(token)} with id ${id}); vocab.txt needs ids 0…${vocab.length - 1} without gaps`);
  });
  const padToken = vocab[padId]?.[0] ?? '[PAD]';
  json.truncation = { direction: 'Right', max_length: maxSeqLength, strategy: 'LongestFirst', stride: 0 };
  json.padding = { strategy: 'BatchLongest', direction: 'Right', pad_to_multiple_of: null, pad_id: padId, pad_type_id: 0, pad_token: padToken };
  const lowercase = lowercases(json.normalizer);
  const specials = { cls_token: '[CLS]', mask_token: '[MASK]', pad_token: padToken, sep_token: '[SEP]', unk_token: json.model.unk_token ?? '[UNK]' };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(
      (json.added_tokens ?? []).map((t) => [String(t.id), { content: t.content, lstrip: t.lstrip ?? false, normalized: t.normalized ?? false, rstrip: t.rstrip ?? false, single_word: t.single_word ?? false, special: t.special ?? true }]),
    ),
    clean_up_tokenization_spaces: true,
    ...specials,
    do_basic_tokenize: true,
    do_lower_case: lowercase,
    model_max_length: maxSeqLength,
    never_split: null,
    padding_side: 'right',
    truncation_side: 'right',
    strip_accents: json.normalizer?.type === 'BertNormalizer' ? (json.normalizer.strip_accents ?? null) : null,
    tokenize_chinese_chars: json.normalizer?.type === 'BertNormalizer' ? (json.normalizer.handle_chinese_chars ?? true) : true,
    tokenizer_class: 'BertTokenizer',
  };
  return new Map([
    ['tokenizer.json', JSON.stringify(json)],
    ['tokenizer_config.json', pretty(tokenizerConfig)],
    ['special_tokens_map.json', pretty(specials)],
    ['vocab.txt', `${vocab.map(([token]) => token).join('\n')}\n`],
  ]);
}

function pretty(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------

/** What the export wrote, for the command's report and the tests. */
export interface SentenceTransformersExport {
  outDir: string;
  /** `<run id>@<12 hex digits of the files' SHA-256>`, as in the ONNX format's card. */
  modelId: string;
  /** The sentence-transformers prompts, { input type: prefix }. */
  prompts: Record<string, string>;
  maxSeqLength: number;
  pooling: PoolingMode;
  normalized: boolean;
  /** The ONNX graph against the eager model (absent when skipped). */
  parity?: { inputs: string; outputs: number; maxAbsDiff: number; passed: boolean; criterion: string };
}

/** The parity check failed: nothing was written (exit 1, as the ONNX format's ExportCheckError). */
export class SentenceTransformersCheckError extends Error {}

/**
 * Writes the directory for `exportable` to `outDir` atomically (any earlier directory there is
 * replaced only once the new one is complete). `check`, when given, runs on the finished staging
 * directory before it moves into place; a throw leaves nothing behind.
 */
export async function writeSentenceTransformersExport(
  exportable: ExportableModel,
  source: ExportSource,
  outDir: string,
  options: SentenceTransformersOptions & { check?: (staging: string, result: SentenceTransformersExport) => Promise<void> },
): Promise<SentenceTransformersExport> {
  const obstacle = sentenceTransformersObstacle(exportable);
  if (obstacle !== null) throw new ExportInputError(`${source.runPath}: cannot export as sentence-transformers: ${obstacle}`);
  const twoTower = exportable as TwoTowerExportable;
  const model = twoTower.model;
  const config = model.config;
  let prompts: Record<string, string>;
  try {
    prompts = promptPrefixes(config.prompts);
  } catch (error) {
    if (error instanceof ExportInputError) error.message = `${source.runPath}: cannot export as sentence-transformers: ${error.message}`;
    throw error;
  }
  const maxSeqLength = twoTower.maxLength.doc;
  const normalized = config.head.type === 'cosine';
  const hidden = config.encoder.hiddenSize;
  const resolvedOut = resolve(outDir);

  return buildDirectoryAtomic(resolvedOut, async (staging) => {
    const files = new Map<string, string | Uint8Array>(tokenizerFiles(source.tokenizer, maxSeqLength, config.encoder.padId));
    files.set('config.json', pretty(bertConfigFor(config.encoder)));
    const modules = [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ...(normalized ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
    ];
    files.set('modules.json', pretty(modules));
    // do_lower_case false: the tokenizer lowercases (or not) by itself; true would add a second pass.
    files.set('sentence_bert_config.json', pretty({ max_seq_length: maxSeqLength, do_lower_case: false }));
    // The legacy pooling_mode_* keys: sentence-transformers 2 to 6 (and Kiln's import) all read them.
    files.set('1_Pooling/config.json', pretty({ word_embedding_dimension: hidden, ...poolingFlags(config.pooling), include_prompt: true }));
    files.set(
      'config_sentence_transformers.json',
      pretty({
        model_type: 'SentenceTransformer',
        __version__: { kiln: KILN_VERSION },
        prompts,
        // `kiln embed` applies no prompt unless --type names one.
        default_prompt_name: null,
        similarity_fn_name: normalized ? 'cosine' : 'dot',
      }),
    );
    const wasTraining = model.training;
    model.eval();
    try {
      noGrad(() => {
        const graph = twoTowerGraph(model, 'doc', { opset: options.opset, quantize: 'none', operators: 'onnx' }, 'last_hidden_state');
        files.set(
          ONNX_MODEL_FILE,
          graph.build({
            producerVersion: KILN_VERSION,
            graphName: `${source.runId} ${ONNX_MODEL_FILE}`,
            docString: `Exported by kiln ${KILN_VERSION} from run ${source.runId}: BertModel's last_hidden_state`,
            metadata: { 'kiln.source_run': source.runId, 'kiln.format': SENTENCE_TRANSFORMERS_FORMAT },
          }),
        );
      });
      for (const [name, content] of files) writeFileIn(staging, name, content);
      writeWeights(join(staging, 'model.safetensors'), model, source.runId);
    } finally {
      model.train(wasTraining);
    }

    const result: SentenceTransformersExport = { outDir: resolvedOut, modelId: modelIdOf(source.runId, staging, [...files.keys(), 'model.safetensors']), prompts, maxSeqLength, pooling: config.pooling, normalized };
    await options.check?.(staging, result);
    writeFileIn(staging, 'README.md', sentenceTransformersReadme(readmeCard(twoTower, source, result, options.opset), { maxSeqLength, prompts, normalized, lowercase: lowercases((source.tokenizer as TokenizerJson).normalizer) }));
    return result;
  });
}

/** Writes a file of the staging directory (fsynced, as the ONNX format's files are). */
function writeFileIn(dir: string, name: string, content: string | Uint8Array): void {
  writeFileAtomic(join(dir, name), [typeof content === 'string' ? Buffer.from(content, 'utf8') : content]);
}

/** model.safetensors: the shared encoder under BertModel's names, and the zero pooler. */
function writeWeights(path: string, model: TwoTowerModel, runId: string): void {
  const hidden = model.config.encoder.hiddenSize;
  const pooler: Tensor[] = [zeros([hidden, hidden]), zeros([hidden])];
  try {
    const state = bertModelStateFrom(model.docEncoder);
    POOLER.forEach((name, i) => state.set(name, pooler[i]!));
    // transformers refuses a safetensors file whose metadata lacks format: pt.
    saveSafetensors(path, state, { format: 'pt', 'kiln.source_run': runId });
  } finally {
    for (const t of pooler) t.dispose();
  }
}

/** `<run id>@<first 12 hex digits of the SHA-256 over the files' names and bytes, sorted by name>`. */
function modelIdOf(runId: string, dir: string, names: readonly string[]): string {
  const digest = createHash('sha256');
  for (const name of [...names].sort((a, b) => a.localeCompare(b))) digest.update(name).update(readFileSync(join(dir, name)));
  return `${runId}@${digest.digest('hex').slice(0, 12)}`;
}

function readmeCard(exportable: TwoTowerExportable, source: ExportSource, result: SentenceTransformersExport, opset: number): ReadmeCard {
  const fields = EXPORT_KINDS['two-tower'].card(exportable);
  return {
    modelId: result.modelId,
    kilnVersion: KILN_VERSION,
    exportedAt: new Date().toISOString(),
    opset,
    parameters: (exportable.model as Module).parameterCount(),
    source: { run: source.runId, path: source.runPath },
    metrics: source.metrics,
    ...(source.distillation === undefined ? {} : { distillation: source.distillation }),
    ...(result.parity === undefined ? {} : { parity: result.parity }),
    encoder: fields.encoder,
    pooling: fields.pooling,
    head: fields.head,
    normalized: fields.normalized,
    dimension: fields.dimension,
    prompts: fields.prompts,
    maxLength: fields.maxLength,
  };
}

// ---------------------------------------------------------------------------------------
// The parity check: onnx/model.onnx in onnxruntime, pooled as sentence-transformers pools
// ---------------------------------------------------------------------------------------

/**
 * Sentence embeddings from the directory's ONNX graph, computed as transformers.js'
 * feature-extraction pipeline does: tokenizer.json, the graph's last_hidden_state, pooling over
 * the attention mask, L2 normalisation when the model normalises. `prompt` is prepended to each text.
 */
export async function embedWithOnnx(dir: string, texts: readonly string[], options: { prompt?: string; pooling: PoolingMode; normalize: boolean; maxSeqLength: number; threads?: number }): Promise<Float32Array[]> {
  const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(dir, 'tokenizer.json'), { cache: false });
  const session = await ort.InferenceSession.create(join(dir, ONNX_MODEL_FILE), options.threads === undefined ? {} : { intraOpNumThreads: options.threads });
  try {
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += 64) {
      const ids = texts.slice(start, start + 64).map((t) => tokenizer.encode(`${options.prompt ?? ''}${t}`, options.maxSeqLength));
      const seqLen = Math.max(...ids.map((row) => row.length));
      const inputIds = new BigInt64Array(ids.length * seqLen).fill(BigInt(tokenizer.padId));
      const mask = new BigInt64Array(ids.length * seqLen);
      ids.forEach((row, b) => row.forEach((id, t) => ((inputIds[b * seqLen + t] = BigInt(id)), (mask[b * seqLen + t] = 1n))));
      const shape = [ids.length, seqLen];
      const result = await session.run({
        input_ids: new ort.Tensor('int64', inputIds, shape),
        attention_mask: new ort.Tensor('int64', mask, shape),
        token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length * seqLen), shape),
      });
      const hiddenStates = result['last_hidden_state']!;
      const width = hiddenStates.dims[2]!;
      const data = hiddenStates.data as Float32Array;
      ids.forEach((row, b) => out.push(poolRow(data, b, seqLen, width, row.length, options.pooling, options.normalize)));
      for (const t of Object.values(result)) t.dispose();
    }
    return out;
  } finally {
    await session.release();
  }
}

/** One text's vector from its rows of last_hidden_state [B, L, H] (`length` real tokens, padding after). */
function poolRow(data: Float32Array, row: number, seqLen: number, width: number, length: number, pooling: PoolingMode, normalize: boolean): Float32Array {
  const at = (t: number): number => (row * seqLen + t) * width;
  let vector: Float32Array;
  if (pooling === 'mean') {
    vector = new Float32Array(width);
    for (let t = 0; t < length; t++) for (let j = 0; j < width; j++) vector[j]! += data[at(t) + j]!;
    for (let j = 0; j < width; j++) vector[j]! /= length;
  } else {
    const token = pooling === 'cls' ? 0 : length - 1;
    vector = data.slice(at(token), at(token) + width);
  }
  if (normalize) {
    const norm = Math.max(Math.hypot(...vector), 1e-12);
    for (let j = 0; j < width; j++) vector[j]! /= norm;
  }
  return vector;
}

/**
 * Compares `embedWithOnnx` on the staged directory with the eager model (fp32, eval mode, both
 * sides truncated at max_seq_length as sentence-transformers truncates) on each side's texts,
 * with the input type's prompt.
 */
export async function checkSentenceTransformersParity(staging: string, exportable: ExportableModel, result: SentenceTransformersExport, inputs: ParityInputs, threads?: number): Promise<{ outputs: number; maxAbsDiff: number }> {
  const model = (exportable as TwoTowerExportable).model;
  const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(staging, 'tokenizer.json'));
  const embedder = new ModelEmbedder(model, tokenizer, { maxLength: { query: result.maxSeqLength, doc: result.maxSeqLength }, batchSize: 64, precision: 'fp32', device: 'cpu' });
  let maxAbsDiff = 0;
  let outputs = 0;
  for (const side of ['query', 'doc'] as const) {
    const input = inputs[side];
    if (input === undefined || input.texts.length === 0) continue;
    const expected = tidy(() => (embedder.embed(side, input.inputType, input.texts).contiguous().toTypedArray<'float32'>() as Float32Array).slice());
    const actual = await embedWithOnnx(staging, input.texts, { prompt: result.prompts[input.inputType], pooling: result.pooling, normalize: result.normalized, maxSeqLength: result.maxSeqLength, threads });
    actual.forEach((vector, i) => vector.forEach((v, j) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - expected[i * vector.length + j]!)))));
    outputs += actual.length;
  }
  return { outputs, maxAbsDiff };
}

export interface SentenceTransformersRunOptions extends SentenceTransformersOptions {
  outDir?: string;
  /** Skip the parity check of the ONNX graph (not recommended). */
  skipParity?: boolean;
  /** Texts for the parity check (run-export.ts's `parityInputsForRun` picks them from the run). */
  parityInputs?: () => Promise<{ inputs: ParityInputs; description: string }>;
  log?: (line: string) => void;
  /** onnxruntime intra-op threads for the parity check (default: onnxruntime's, all cores). */
  threads?: number;
}

/** The default directory of a run's sentence-transformers export: `<run>/sentence-transformers`. */
export function defaultSentenceTransformersDir(runPath: string): string {
  return join(resolve(runPath), SENTENCE_TRANSFORMERS_FORMAT);
}

/**
 * `kiln export --format sentence-transformers` on a run directory: rebuild the model, write the
 * directory, check onnx/model.onnx against the eager model (max |Δ| ≤ 1e-4), move it into place.
 *
 * @example
 * const { outDir, modelId } = await exportSentenceTransformersRun('runs/jobbert-tiny', { opset: 17 });
 * // python: SentenceTransformer(outDir).encode(['data engineer'], prompt_name='title')
 */
export async function exportSentenceTransformersRun(runPath: string, options: SentenceTransformersRunOptions): Promise<SentenceTransformersExport> {
  const outDir = options.outDir ?? defaultSentenceTransformersDir(runPath);
  const { exportable, source } = loadExportableRun(runPath, SENTENCE_TRANSFORMERS_FORMAT);
  const log = options.log ?? (() => {});
  try {
    return await writeSentenceTransformersExport(exportable, source, outDir, {
      opset: options.opset,
      check: async (staging, result) => {
        if (options.skipParity === true || options.parityInputs === undefined) return;
        const { inputs, description } = await options.parityInputs();
        const { outputs, maxAbsDiff } = await checkSentenceTransformersParity(staging, exportable, result, inputs, options.threads);
        const passed = maxAbsDiff <= FP32_MAX_ABS_DIFF;
        const criterion = `max |Δ| ≤ ${FP32_MAX_ABS_DIFF}`;
        log(`parity of ${ONNX_MODEL_FILE} (${description}): ${outputs} outputs, max |Δ| ${maxAbsDiff.toExponential(2)} → ${passed ? 'pass' : 'FAIL'} (${criterion})`);
        result.parity = { inputs: description, outputs, maxAbsDiff, passed, criterion };
        if (!passed) throw new SentenceTransformersCheckError(`parity check failed: ${ONNX_MODEL_FILE} differs from the eager model by up to ${maxAbsDiff}; required ${criterion}. Nothing was written to ${outDir}.`);
      },
    });
  } finally {
    exportable.model.dispose();
  }
}
