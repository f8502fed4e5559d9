/**
 * Import of Hugging Face BERT checkpoints from a local directory (bert-base-uncased, a MiniLM,
 * a sentence-transformers model…), as initial weights or as a teacher.
 *
 * What a directory holds (`save_pretrained` in transformers; constants in
 * https://github.com/huggingface/transformers/blob/main/src/transformers/utils/__init__.py):
 *   config.json                   BertConfig (https://huggingface.co/docs/transformers/model_doc/bert#transformers.BertConfig):
 *                                 model_type "bert", vocab_size, hidden_size, num_hidden_layers,
 *                                 num_attention_heads, intermediate_size, hidden_act, *_dropout_prob,
 *                                 max_position_embeddings, type_vocab_size, layer_norm_eps,
 *                                 initializer_range, pad_token_id, position_embedding_type;
 *                                 absent keys take BertConfig's defaults (bert-base's sizes)
 *   model.safetensors             the weights (https://github.com/huggingface/safetensors, "Format"), or
 *   model.safetensors.index.json  { weight_map: { tensor: shard file } } over model-0000N-of-0000M.safetensors
 *   pytorch_model.bin (+ .index.json)  the older torch.save format: refused, see below
 *   tokenizer.json / vocab.txt    the WordPiece tokenizer (tokenizer.json wins, as in AutoTokenizer);
 *                                 tokenizer_config.json's do_lower_case says whether vocab.txt is uncased
 *
 * Tensor names are those of modeling_bert.py
 * (https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/modeling_bert.py):
 * `BertModel` saves `embeddings.word_embeddings.weight`, `encoder.layer.N.attention.self.query.weight`,
 * …, `pooler.dense.*`; the task models (BertForMaskedLM, BertForPreTraining,
 * BertForSequenceClassification) put the same names under `bert.` beside their heads
 * (`cls.predictions.*`, `cls.seq_relationship.*`, `classifier.*`). Checkpoints converted from
 * Google's TF release name LayerNorm parameters `gamma`/`beta` (transformers renames them on
 * load, as here). Kiln's `BertEncoder` uses BertModel's names, so the import drops a leading
 * `bert.`, renames gamma/beta, and keeps every other tensor under its own name.
 *
 * sentence-transformers (https://github.com/UKPLab/sentence-transformers, SentenceTransformer.save)
 * adds modules.json, a list of `{ idx, name, path, type }`: a `...models.Transformer` (path ""
 * = the transformer files are in the root directory, as in current models; older ones use
 * "0_Transformer"), a `...models.Pooling` whose config.json sets one of
 * pooling_mode_{mean_tokens, cls_token, lasttoken, max_tokens, mean_sqrt_len_tokens,
 * weightedmean_tokens}, and optionally `...models.Normalize` (unit-length embeddings).
 * sentence_bert_config.json holds max_seq_length.
 *
 * pytorch_model.bin is torch.save's output: since PyTorch 1.6 a zip of a Python pickle
 * (archive/data.pkl, naming `torch._utils._rebuild_tensor_v2` and persistent storage ids) and
 * the raw storages (archive/data/N); files saved before 1.6 use the legacy format (a sequence of
 * pickles followed by the raw storages). libtorch 1.13 can read the zip
 * form (torch::jit::pickle_load), but Kiln's addon (native/) binds no pickle or TorchScript
 * loader, and a pickle is not something to interpret in JS; so the import refuses it with a
 * one-time conversion command (Python's torch.load reads both forms;
 * https://pytorch.org/docs/stable/notes/serialization.html).
 *
 * Supported: BERT with absolute positions, exact (erf) GELU — `hidden_act: gelu`, which is
 * what Kiln's BertEncoder computes — and an encoder (not `is_decoder`); pooling mean, cls or
 * last token. Anything else is a HuggingFaceImportError that says so.
 *
 * The other direction, for `kiln export --format sentence-transformers`, is at the end:
 * `bertConfigFor` and `bertModelStateFrom` write the config.json and the BertModel tensor names
 * that this import reads back unchanged (one name table, HF_NAME_RULES, serves both).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { isFloatingDType, keep, loadSafetensors, type Device, type Tensor } from '../engine/index.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { BertEncoder } from './bert.js';
import type { EncoderConfig, PoolingMode } from './config.js';

/** A directory that is not an importable BERT checkpoint; the message names the file and the fix. */
export class HuggingFaceImportError extends Error {
  override name = 'HuggingFaceImportError';
}

export interface HuggingFaceCheckpoint {
  /** The directory given to `loadHuggingFaceCheckpoint`. */
  dir: string;
  /** Where config.json, the weights and the tokenizer were found: `dir`, or its `0_Transformer/`-style folder. */
  transformerDir: string;
  /** From config.json. Dropout and initializer values are the checkpoint's; change them for fine-tuning as needed. */
  encoder: EncoderConfig;
  /** The sentence-transformers Pooling module's mode, or null for a plain Hugging Face directory. */
  pooling: PoolingMode | null;
  /** A sentence-transformers Normalize module follows the pooling (embeddings are unit-length). */
  normalize: boolean;
  /** sentence_bert_config.json's max_seq_length, or null. */
  maxSeqLength: number | null;
  /** From tokenizer.json, else vocab.txt. */
  tokenizer: WordPieceTokenizer;
  /** The file the tokenizer was read from. */
  tokenizerFile: string;
  /**
   * Every tensor of the checkpoint under Kiln's names (leading `bert.` dropped, LayerNorm
   * gamma/beta → weight/bias), in the dtype stored (`loadStateDict` converts on copy). Owned by
   * the checkpoint, outside any `tidy` scope: free them with `disposeCheckpoint`.
   */
  weights: Map<string, Tensor>;
  /** The safetensors files read (one, or the shards of model.safetensors.index.json). */
  weightFiles: string[];
  /** The only weights format Kiln reads; pytorch_model.bin is refused with a conversion command. */
  source: 'safetensors';
}

const SAFETENSORS = 'model.safetensors';
const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const PICKLE = 'pytorch_model.bin';
const PICKLE_INDEX = 'pytorch_model.bin.index.json';
/** Weights Kiln cannot read in any form: named in the error when nothing readable is there. */
const OTHER_FORMATS: Record<string, string> = {
  'tf_model.h5': 'TensorFlow/Keras',
  'model.ckpt.index': 'TensorFlow checkpoint',
  'flax_model.msgpack': 'Flax',
};

const SUPPORTED_ARCHITECTURES = ['BertModel', 'BertForMaskedLM', 'BertForPreTraining', 'BertForSequenceClassification'];
const SUPPORTED = `model_type 'bert' (${SUPPORTED_ARCHITECTURES.join(', ')}) with position_embedding_type 'absolute' and hidden_act 'gelu'`;

/** BertConfig's defaults (transformers' configuration_bert.py), used for keys config.json leaves out. */
const BERT_CONFIG_DEFAULTS = {
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  initializer_range: 0.02,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  position_embedding_type: 'absolute',
} as const;

/** sentence-transformers Pooling flags → Kiln's pooling; the other flags are named as unsupported. The export writes the same flags. */
export const SENTENCE_TRANSFORMERS_POOLING: Record<string, PoolingMode | null> = {
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_cls_token: 'cls',
  pooling_mode_lasttoken: 'last',
  pooling_mode_max_tokens: null,
  pooling_mode_mean_sqrt_len_tokens: null,
  pooling_mode_weightedmean_tokens: null,
};

interface SentenceTransformersLayout {
  transformerDir: string;
  pooling: PoolingMode | null;
  normalize: boolean;
  maxSeqLength: number | null;
}

interface StModule {
  path: string;
  type: string;
}

/**
 * True when `dir` holds config.json and a weights file (model.safetensors, its index, or a
 * pytorch_model.bin that the import will ask to convert), directly or in the transformer folder
 * that a sentence-transformers modules.json names.
 *
 * @example
 * isHuggingFaceDirectory('models/all-MiniLM-L6-v2'); // true
 */
export function isHuggingFaceDirectory(dir: string): boolean {
  let transformerDir = dir;
  try {
    transformerDir = readModules(dir)?.transformer ?? dir;
  } catch {
    // An unreadable modules.json: judge the root directory alone.
  }
  return existsSync(join(transformerDir, 'config.json')) && [SAFETENSORS, SAFETENSORS_INDEX, PICKLE, PICKLE_INDEX].some((f) => existsSync(join(transformerDir, f)));
}

/**
 * Reads a Hugging Face BERT directory (plain or sentence-transformers): the encoder config,
 * pooling, tokenizer and every tensor, checked against what `BertEncoder` needs. Throws a
 * `HuggingFaceImportError` naming the file and the fix when anything does not fit.
 *
 * @example
 * const ckpt = loadHuggingFaceCheckpoint('models/all-MiniLM-L6-v2');
 * const encoder = encoderFromCheckpoint(ckpt).eval(); // BertEncoder with the checkpoint's weights
 * ckpt.pooling;   // 'mean'
 * ckpt.normalize; // true
 * disposeCheckpoint(ckpt);
 */
export function loadHuggingFaceCheckpoint(dir: string, options: { device?: Device } = {}): HuggingFaceCheckpoint {
  if (!existsSync(dir)) throw new HuggingFaceImportError(`${dir}: no such directory; expected a Hugging Face model directory (config.json, model.safetensors, vocab.txt or tokenizer.json)`);
  const layout = readSentenceTransformersLayout(dir);
  const { transformerDir } = layout;
  const configPath = join(transformerDir, 'config.json');
  if (!existsSync(configPath)) {
    throw new HuggingFaceImportError(
      `${configPath}: missing; expected a Hugging Face model directory with config.json, model.safetensors and vocab.txt or tokenizer.json (what save_pretrained writes)`,
    );
  }
  const encoder = encoderConfigFrom(readJson(configPath), configPath);
  const { tokenizer, tokenizerFile } = readTokenizer(transformerDir, encoder.vocabSize, configPath);
  const { weights, weightFiles, sourceNames } = readWeights(transformerDir, options.device);
  try {
    checkEncoderTensors(weights, sourceNames, encoder, weightFiles, configPath);
  } catch (error) {
    for (const t of weights.values()) t.dispose();
    throw error;
  }
  return { dir, transformerDir, encoder, pooling: layout.pooling, normalize: layout.normalize, maxSeqLength: layout.maxSeqLength, tokenizer, tokenizerFile, weights, weightFiles, source: 'safetensors' };
}

/** Frees every tensor of the checkpoint (including those `encoderStateFrom` returned). */
export function disposeCheckpoint(checkpoint: HuggingFaceCheckpoint): void {
  for (const t of checkpoint.weights.values()) t.dispose();
  checkpoint.weights.clear();
}

/**
 * The tensors `BertEncoder` loads, by its parameter names (the checkpoint's own tensors, not
 * copies): pass to `encoder.loadStateDict(…)`, strict.
 */
export function encoderStateFrom(checkpoint: HuggingFaceCheckpoint): Map<string, Tensor> {
  const state = new Map<string, Tensor>();
  for (const name of encoderParameterNames(checkpoint.encoder.numLayers)) {
    const t = checkpoint.weights.get(name);
    if (t === undefined) throw new HuggingFaceImportError(`${checkpoint.weightFiles.join(', ')}: no tensor '${name}' (was the checkpoint disposed?)`);
    state.set(name, t);
  }
  return state;
}

/**
 * A `BertEncoder` with the checkpoint's sizes and weights (float32, CPU, training mode). Only
 * the dropout rates may differ from config.json: the shape comes from the checkpoint.
 *
 * @example
 * const teacher = encoderFromCheckpoint(loadHuggingFaceCheckpoint('models/bert-base-uncased')).eval();
 */
export function encoderFromCheckpoint(checkpoint: HuggingFaceCheckpoint, overrides: Partial<Pick<EncoderConfig, 'hiddenDropout' | 'attentionDropout'>> = {}): BertEncoder {
  const encoder = new BertEncoder({ ...checkpoint.encoder, ...overrides });
  try {
    encoder.loadStateDict(encoderStateFrom(checkpoint));
  } catch (error) {
    encoder.dispose();
    throw error;
  }
  return encoder;
}

// ---------------------------------------------------------------------------------------
// sentence-transformers layout
// ---------------------------------------------------------------------------------------

/** modules.json's Transformer folder and the other modules, or null when there is no modules.json. */
function readModules(dir: string): { transformer: string; modules: StModule[]; path: string } | null {
  const path = join(dir, 'modules.json');
  if (!existsSync(path)) return null;
  const raw = readJson(path);
  if (!Array.isArray(raw)) throw new HuggingFaceImportError(`${path}: expected a JSON list of {idx, name, path, type} (sentence-transformers' modules.json)`);
  const modules = raw.map((m: unknown, i) => {
    const entry = m as Partial<StModule> | null;
    if (typeof entry?.type !== 'string' || typeof entry.path !== 'string') {
      throw new HuggingFaceImportError(`${path}: entry ${i} is ${JSON.stringify(m)}; expected {idx, name, path, type} with string path and type`);
    }
    return { path: entry.path, type: entry.type };
  });
  const transformer = modules.find((m) => kindOf(m) === 'Transformer');
  if (transformer === undefined) {
    throw new HuggingFaceImportError(`${path}: no sentence_transformers.models.Transformer module (found ${modules.map((m) => m.type).join(', ') || 'none'}); Kiln imports a Transformer module holding a BERT`);
  }
  return { transformer: join(dir, transformer.path), modules, path };
}

/** `sentence_transformers.models.Pooling` → `Pooling`. */
function kindOf(module: StModule): string {
  return module.type.slice(module.type.lastIndexOf('.') + 1);
}

function readSentenceTransformersLayout(dir: string): SentenceTransformersLayout {
  const found = readModules(dir);
  if (found === null) return { transformerDir: dir, pooling: null, normalize: false, maxSeqLength: null };
  let pooling: PoolingMode | null = null;
  let normalize = false;
  for (const module of found.modules) {
    const kind = kindOf(module);
    if (kind === 'Transformer') continue;
    if (kind === 'Pooling') pooling = readPooling(join(dir, module.path, 'config.json'));
    else if (kind === 'Normalize') normalize = true;
    else {
      // A Dense projection, say, changes the embedding: ignoring it would give a different model.
      throw new HuggingFaceImportError(
        `${found.path}: module ${module.type} (${module.path || '.'}) is not supported; Kiln imports sentence-transformers models made of Transformer (BERT), Pooling and Normalize`,
      );
    }
  }
  const stConfig = join(dir, 'sentence_bert_config.json');
  const maxSeqLength = existsSync(stConfig) ? (readJson(stConfig) as { max_seq_length?: unknown }).max_seq_length : undefined;
  return { transformerDir: found.transformer, pooling, normalize, maxSeqLength: typeof maxSeqLength === 'number' ? maxSeqLength : null };
}

function readPooling(path: string): PoolingMode {
  if (!existsSync(path)) throw new HuggingFaceImportError(`${path}: missing; modules.json lists a Pooling module, whose config.json sets pooling_mode_mean_tokens, pooling_mode_cls_token or pooling_mode_lasttoken`);
  const config = readJson(path) as Record<string, unknown>;
  const on = Object.keys(SENTENCE_TRANSFORMERS_POOLING).filter((k) => config[k] === true);
  const supported = 'pooling_mode_mean_tokens (mean), pooling_mode_cls_token (cls) or pooling_mode_lasttoken (last)';
  if (on.length !== 1) {
    throw new HuggingFaceImportError(
      `${path}: ${on.length === 0 ? 'no pooling mode is set' : `${on.join(', ')} are all set (sentence-transformers concatenates them)`}; Kiln supports exactly one of ${supported}`,
    );
  }
  const mode = SENTENCE_TRANSFORMERS_POOLING[on[0]!];
  if (mode === null || mode === undefined) throw new HuggingFaceImportError(`${path}: ${on[0]} is not supported; Kiln pools with ${supported}`);
  if (config.include_prompt === false) {
    throw new HuggingFaceImportError(`${path}: include_prompt is false (prompt tokens left out of the pooling), which Kiln does not support; its pooling covers every token`);
  }
  return mode;
}

// ---------------------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------------------

function encoderConfigFrom(raw: unknown, path: string): EncoderConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HuggingFaceImportError(`${path}: expected a JSON object (a BertConfig)`);
  const config = raw as Record<string, unknown>;
  const modelType = config.model_type;
  const architectures = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const isBert = modelType === 'bert' || (modelType === undefined && architectures.length > 0 && architectures.every((a) => SUPPORTED_ARCHITECTURES.includes(a)));
  if (!isBert) {
    const what = modelType === undefined ? `no model_type and architectures [${architectures.join(', ')}]` : `model_type '${String(modelType)}'${architectures.length > 0 ? ` (${architectures.join(', ')})` : ''}`;
    throw new HuggingFaceImportError(`${path}: ${what} is not supported; Kiln imports BERT checkpoints: ${SUPPORTED}`);
  }
  const get = <K extends keyof typeof BERT_CONFIG_DEFAULTS>(key: K): unknown => config[key] ?? BERT_CONFIG_DEFAULTS[key];
  const positions = get('position_embedding_type');
  if (positions !== 'absolute') {
    throw new HuggingFaceImportError(`${path}: position_embedding_type '${String(positions)}' is not supported; Kiln's BertEncoder has learned absolute positions ('absolute')`);
  }
  const act = get('hidden_act');
  if (act !== 'gelu') {
    throw new HuggingFaceImportError(
      `${path}: hidden_act '${String(act)}' is not supported; Kiln's BertEncoder uses exact (erf) GELU, hidden_act 'gelu' (the tanh approximations gelu_new / gelu_pytorch_tanh / gelu_fast differ)`,
    );
  }
  if (config.is_decoder === true || config.add_cross_attention === true) {
    throw new HuggingFaceImportError(`${path}: is_decoder / add_cross_attention is set; Kiln imports bidirectional BERT encoders only`);
  }
  const int = (key: keyof typeof BERT_CONFIG_DEFAULTS, min: number): number => {
    const v = get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new HuggingFaceImportError(`${path}: ${key} is ${JSON.stringify(v)}; expected an integer ≥ ${min}`);
    return v;
  };
  const real = (key: keyof typeof BERT_CONFIG_DEFAULTS, min: number, max: number): number => {
    const v = get(key);
    if (typeof v !== 'number' || !(v >= min && v <= max)) throw new HuggingFaceImportError(`${path}: ${key} is ${JSON.stringify(v)}; expected a number in [${min}, ${max}]`);
    return v;
  };
  const hiddenSize = int('hidden_size', 1);
  const numHeads = int('num_attention_heads', 1);
  if (hiddenSize % numHeads !== 0) throw new HuggingFaceImportError(`${path}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  const vocabSize = int('vocab_size', 1);
  const padId = config.pad_token_id === null ? 0 : int('pad_token_id', 0);
  if (padId >= vocabSize) throw new HuggingFaceImportError(`${path}: pad_token_id ${padId} is outside the vocabulary (vocab_size ${vocabSize})`);
  return {
    vocabSize,
    hiddenSize,
    numLayers: int('num_hidden_layers', 1),
    numHeads,
    intermediateSize: int('intermediate_size', 1),
    maxPositions: int('max_position_embeddings', 1),
    typeVocabSize: int('type_vocab_size', 1),
    hiddenDropout: real('hidden_dropout_prob', 0, 1),
    attentionDropout: real('attention_probs_dropout_prob', 0, 1),
    layerNormEps: real('layer_norm_eps', 0, 1),
    initStd: real('initializer_range', 0, Infinity),
    padId,
  };
}

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

function readTokenizer(dir: string, vocabSize: number, configPath: string): { tokenizer: WordPieceTokenizer; tokenizerFile: string } {
  const jsonPath = join(dir, 'tokenizer.json');
  const vocabPath = join(dir, 'vocab.txt');
  let tokenizerFile: string;
  let tokenizer: WordPieceTokenizer;
  try {
    if (existsSync(jsonPath)) {
      tokenizerFile = jsonPath;
      tokenizer = WordPieceTokenizer.fromTokenizerJson(jsonPath);
    } else if (existsSync(vocabPath)) {
      tokenizerFile = vocabPath;
      const tokenizerConfig = join(dir, 'tokenizer_config.json');
      if (existsSync(tokenizerConfig) && (readJson(tokenizerConfig) as { do_lower_case?: unknown }).do_lower_case === false) {
        throw new HuggingFaceImportError(
          `${tokenizerConfig}: do_lower_case is false (a cased model), but a tokenizer built from vocab.txt alone is BERT-uncased; add the model's tokenizer.json (transformers writes it with AutoTokenizer.from_pretrained(dir).save_pretrained(dir))`,
        );
      }
      tokenizer = WordPieceTokenizer.fromVocabFile(vocabPath);
    } else {
      throw new HuggingFaceImportError(`${dir}: no tokenizer.json or vocab.txt; expected the WordPiece vocabulary saved with the model`);
    }
  } catch (error) {
    if (error instanceof HuggingFaceImportError) throw error;
    throw new HuggingFaceImportError(`${dir}: cannot build the tokenizer: ${(error as Error).message}`);
  }
  if (tokenizer.vocabSize !== vocabSize) {
    throw new HuggingFaceImportError(
      `${tokenizerFile} has ${tokenizer.vocabSize} tokens but ${configPath} says vocab_size ${vocabSize}; the vocabulary and the embedding table must match (is this the model's own tokenizer?)`,
    );
  }
  return { tokenizer, tokenizerFile };
}

// ---------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------

/** A POSIX shell word. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** The one-time conversion of pytorch_model.bin (or its shards) to model.safetensors, as a shell command. */
export function pickleConversionCommand(dir: string, sharded: boolean): string {
  // clone(): tied tensors (the MLM decoder and the word embeddings) share storage, which save_file refuses.
  const save = "save_file(sd, os.path.join(d, 'model.safetensors'), metadata={'format': 'pt'})";
  const load = (file: string): string => `torch.load(os.path.join(d, ${file}), map_location='cpu').items()`;
  const body = sharded
    ? `files = sorted(set(json.load(open(os.path.join(d, '${PICKLE_INDEX}')))['weight_map'].values())); sd = {k: v.contiguous().clone() for f in files for k, v in ${load('f')}}`
    : `sd = {k: v.contiguous().clone() for k, v in ${load(`'${PICKLE}'`)}}`;
  return `python3 -c "import json, os, sys, torch; from safetensors.torch import save_file; d = sys.argv[1]; ${body}; ${save}" ${shellQuote(dir)}`;
}

function readWeights(dir: string, device: Device | undefined): { weights: Map<string, Tensor>; weightFiles: string[]; sourceNames: Map<string, string> } {
  let files: string[];
  if (existsSync(join(dir, SAFETENSORS))) {
    files = [join(dir, SAFETENSORS)];
  } else if (existsSync(join(dir, SAFETENSORS_INDEX))) {
    const indexPath = join(dir, SAFETENSORS_INDEX);
    const map = (readJson(indexPath) as { weight_map?: unknown }).weight_map;
    if (typeof map !== 'object' || map === null) throw new HuggingFaceImportError(`${indexPath}: no weight_map; expected { "weight_map": { tensor name: shard file } }`);
    files = [...new Set(Object.values(map as Record<string, unknown>).map(String))].map((f) => join(dir, f));
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length > 0) throw new HuggingFaceImportError(`${indexPath}: shard(s) ${missing.join(', ')} missing`);
  } else if (existsSync(join(dir, PICKLE)) || existsSync(join(dir, PICKLE_INDEX))) {
    const sharded = !existsSync(join(dir, PICKLE));
    const path = join(dir, sharded ? PICKLE_INDEX : PICKLE);
    throw new HuggingFaceImportError(
      `${path}: ${sharded ? 'sharded ' : ''}pytorch_model.bin (a Python pickle) cannot be read by Kiln; convert it once to model.safetensors ` +
        `(needs Python with torch and safetensors: pip install torch safetensors):\n  ${pickleConversionCommand(dir, sharded)}`,
    );
  } else {
    const other = Object.keys(OTHER_FORMATS).filter((f) => existsSync(join(dir, f)));
    const found = other.length > 0 ? `; found ${other.map((f) => `${f} (${OTHER_FORMATS[f]})`).join(', ')}, which Kiln cannot read` : '';
    throw new HuggingFaceImportError(`${dir}: no weights file; expected ${SAFETENSORS} (or ${SAFETENSORS_INDEX} with its shards)${found}`);
  }

  const weights = new Map<string, Tensor>();
  const sourceNames = new Map<string, string>();
  let pending = new Map<string, Tensor>(); // the current file's tensors, freed with the others on an error
  try {
    for (const file of files) {
      try {
        pending = loadSafetensors(file, device === undefined ? {} : { device }).tensors;
      } catch (error) {
        throw new HuggingFaceImportError((error as Error).message);
      }
      for (const t of pending.values()) keep(t);
      for (const [name, t] of pending) {
        const kiln = kilnName(name);
        const other = sourceNames.get(kiln);
        if (other !== undefined) {
          throw new HuggingFaceImportError(`${file}: tensors '${other}' and '${name}' both map to '${kiln}' (a leading 'bert.' is dropped, LayerNorm gamma/beta read as weight/bias)`);
        }
        weights.set(kiln, t);
        sourceNames.set(kiln, name);
      }
    }
  } catch (error) {
    for (const t of [...weights.values(), ...pending.values()]) t.dispose();
    throw error;
  }
  return { weights, weightFiles: files, sourceNames };
}

/**
 * Hugging Face's BERT tensor names → Kiln's: the one table that import and export both read.
 * Kiln's `BertEncoder` parameters carry `BertModel`'s own names, so a rule here rewrites only
 * another spelling of the same tensor that checkpoints in the wild use. Import applies every
 * rule; export writes Kiln's names as they are (BertModel's spelling), which `huggingFaceName`
 * checks no rule would rewrite, so the two directions cannot drift apart.
 */
const HF_NAME_RULES: ReadonlyArray<{ huggingFace: RegExp; kiln: string; source: string }> = [
  { huggingFace: /^bert\./, kiln: '', source: 'BertForMaskedLM, BertForPreTraining and BertForSequenceClassification nest BertModel under bert.' },
  { huggingFace: /\.gamma$/, kiln: '.weight', source: "LayerNorm scale in checkpoints converted from Google's TF release" },
  { huggingFace: /\.beta$/, kiln: '.bias', source: "LayerNorm shift in checkpoints converted from Google's TF release" },
];

/** Hugging Face name → Kiln name (HF_NAME_RULES applied in order). */
function kilnName(name: string): string {
  return HF_NAME_RULES.reduce((renamed, rule) => renamed.replace(rule.huggingFace, rule.kiln), name);
}

const namesByDepth = new Map<number, string[]>();

/** `BertEncoder`'s parameter names for `numLayers` layers, read off a miniature encoder (names do not depend on sizes). */
function encoderParameterNames(numLayers: number): string[] {
  let names = namesByDepth.get(numLayers);
  if (names === undefined) {
    const mini = new BertEncoder({
      vocabSize: 1, hiddenSize: 1, numLayers, numHeads: 1, intermediateSize: 1, maxPositions: 1, typeVocabSize: 1,
      hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12, initStd: 0.02, padId: 0,
    });
    names = mini.namedParameters().map(([n]) => n);
    mini.dispose();
    namesByDepth.set(numLayers, names);
  }
  return names;
}

/** The shape config.json implies for each BertEncoder parameter, with the keys it comes from. */
function expectedShape(name: string, c: EncoderConfig): { shape: number[]; keys: string } {
  const H = c.hiddenSize;
  const rules: Array<[RegExp, number[], string]> = [
    [/^embeddings\.word_embeddings\.weight$/, [c.vocabSize, H], 'vocab_size, hidden_size'],
    [/^embeddings\.position_embeddings\.weight$/, [c.maxPositions, H], 'max_position_embeddings, hidden_size'],
    [/^embeddings\.token_type_embeddings\.weight$/, [c.typeVocabSize, H], 'type_vocab_size, hidden_size'],
    [/LayerNorm\.(weight|bias)$/, [H], 'hidden_size'],
    [/attention\.(self\.(query|key|value)|output\.dense)\.weight$/, [H, H], 'hidden_size, hidden_size'],
    [/attention\.(self\.(query|key|value)|output\.dense)\.bias$/, [H], 'hidden_size'],
    [/intermediate\.dense\.weight$/, [c.intermediateSize, H], 'intermediate_size, hidden_size'],
    [/intermediate\.dense\.bias$/, [c.intermediateSize], 'intermediate_size'],
    [/\d\.output\.dense\.weight$/, [H, c.intermediateSize], 'hidden_size, intermediate_size'],
    [/\d\.output\.dense\.bias$/, [H], 'hidden_size'],
  ];
  const rule = rules.find(([pattern]) => pattern.test(name));
  if (rule === undefined) throw new Error(`hf-checkpoint: no shape rule for BertEncoder parameter '${name}' (BertEncoder changed; update expectedShape)`);
  return { shape: rule[1], keys: rule[2] };
}

function checkEncoderTensors(weights: Map<string, Tensor>, sourceNames: Map<string, string>, config: EncoderConfig, files: string[], configPath: string): void {
  const where = files.length === 1 ? files[0]! : `${files.length} shards (${files.join(', ')})`;
  const names = encoderParameterNames(config.numLayers);
  const missing = names.filter((n) => !weights.has(n));
  if (missing.length > 0) {
    const shown = missing.slice(0, 6).join(', ') + (missing.length > 6 ? `, … (${missing.length} in all)` : '');
    throw new HuggingFaceImportError(
      `${where}: missing tensor(s) the BERT encoder needs: ${shown}; looked for Hugging Face BertModel names, optionally under 'bert.' (LayerNorm also as gamma/beta), for the ${config.numLayers} layers config.json declares`,
    );
  }
  const wrong: string[] = [];
  for (const name of names) {
    const t = weights.get(name)!;
    const { shape, keys } = expectedShape(name, config);
    const source = sourceNames.get(name) ?? name;
    if (t.shape.join(',') !== shape.join(',')) wrong.push(`'${source}' has shape [${t.shape.join(', ')}] but ${configPath} implies [${shape.join(', ')}] (${keys})`);
    else if (!isFloatingDType(t.dtype)) wrong.push(`'${source}' has dtype ${t.dtype}; expected a floating-point tensor`);
  }
  if (wrong.length > 0) throw new HuggingFaceImportError(`${where}: ${wrong.slice(0, 4).join('; ')}${wrong.length > 4 ? `; … (${wrong.length} in all)` : ''}`);
}

// ---------------------------------------------------------------------------------------
// Export: Kiln → Hugging Face (what the import above reads back unchanged)
// ---------------------------------------------------------------------------------------

/**
 * Kiln `BertEncoder` parameter name → the name Hugging Face's `BertModel` saves it under: the
 * same name, since Kiln uses BertModel's. Throws if the name is one the import would rewrite
 * (HF_NAME_RULES), which would mean BertEncoder's naming had drifted from BertModel's.
 */
export function huggingFaceName(kiln: string): string {
  if (kilnName(kiln) !== kiln) throw new Error(`hf-checkpoint: Kiln parameter '${kiln}' is not a BertModel name (the import would read it as '${kilnName(kiln)}'); BertEncoder must keep BertModel's names`);
  return kiln;
}

/**
 * A `BertEncoder`'s weights under `BertModel`'s names, as `save_pretrained` writes them to
 * model.safetensors: the encoder's own tensors, not copies. BertModel's pooler (a dense layer
 * and tanh over [CLS], `pooler.dense.*`) has no counterpart in Kiln and is not included.
 *
 * @example
 * saveSafetensors('out/model.safetensors', bertModelStateFrom(model.queryEncoder), { format: 'pt' });
 */
export function bertModelStateFrom(encoder: BertEncoder): Map<string, Tensor> {
  const expected = encoderParameterNames(encoder.config.numLayers);
  const state = new Map(encoder.namedParameters().map(([name, t]) => [huggingFaceName(name), t] as const));
  const missing = expected.filter((name) => !state.has(name));
  if (missing.length > 0 || state.size !== expected.length) {
    throw new Error(`hf-checkpoint: BertEncoder's parameters [${[...state.keys()].join(', ')}] differ from the names the import reads [${expected.join(', ')}]`);
  }
  return state;
}

/**
 * config.json (a `BertConfig`) describing a Kiln encoder, which `encoderConfigFrom` reads back
 * as the same EncoderConfig. `hidden_act: gelu` is the exact (erf) GELU Kiln computes, and
 * `position_embedding_type: absolute` its learned positions.
 *
 * @example
 * bertConfigFor(tinyEncoder()); // { architectures: ['BertModel'], model_type: 'bert', hidden_size: 32, … }
 */
export function bertConfigFor(encoder: EncoderConfig): Record<string, unknown> {
  return {
    architectures: ['BertModel'],
    model_type: 'bert',
    vocab_size: encoder.vocabSize,
    hidden_size: encoder.hiddenSize,
    num_hidden_layers: encoder.numLayers,
    num_attention_heads: encoder.numHeads,
    intermediate_size: encoder.intermediateSize,
    hidden_act: 'gelu',
    hidden_dropout_prob: encoder.hiddenDropout,
    attention_probs_dropout_prob: encoder.attentionDropout,
    max_position_embeddings: encoder.maxPositions,
    type_vocab_size: encoder.typeVocabSize,
    initializer_range: encoder.initStd,
    layer_norm_eps: encoder.layerNormEps,
    pad_token_id: encoder.padId,
    position_embedding_type: 'absolute',
    classifier_dropout: null,
  };
}

// ---------------------------------------------------------------------------------------

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new HuggingFaceImportError(`${path}: cannot read: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HuggingFaceImportError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}
