/**
 * Import of Hugging Face BERT directories against PyTorch.
 *
 * test/models/hf_tiny_bert.py (Debian's /usr/bin/python3 with torch 1.13; no `transformers`)
 * writes one tiny random BERT (vocab 120, hidden 32, 2 layers, 4 heads, FFN 64) in several
 * layouts — sentence-transformers with the transformer in the root or in 0_Transformer/, TF
 * gamma/beta names, bfloat16 and float16, pytorch_model.bin whole and sharded — and prints the
 * last hidden states and poolings of an independent plain-torch forward (HF BertModel's math).
 * Kiln loads each directory, runs `BertEncoder` on the same ids and must agree to 1e-5.
 *
 * Also: every refusal (another model_type, unsupported activation or positions, a missing
 * tensor, a shape or vocabulary mismatch, missing files, unsupported sentence-transformers
 * modules) is a HuggingFaceImportError naming the file and the fix, and leaks no tensor.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { liveTensorCount, loadSafetensors, saveSafetensors, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { bertUncasedTokenizerJson, readVocab } from '../../src/data/tokenizer.js';
import { BertEncoder } from '../../src/models/bert.js';
import { pool } from '../../src/models/pooling.js';
import {
  disposeCheckpoint,
  encoderFromCheckpoint,
  encoderStateFrom,
  HuggingFaceImportError,
  isHuggingFaceDirectory,
  loadHuggingFaceCheckpoint,
  type HuggingFaceCheckpoint,
} from '../../src/models/hf-checkpoint.js';
import { PYTHON, REPO_ROOT, runPython } from '../helpers/python.js';

type Layout = 'st' | 'st0' | 'tf' | 'bf16' | 'f16' | 'bin' | 'bin_sharded';
interface Reference {
  vocab: string[];
  ids: number[][];
  mask: number[][];
  hidden: number[];
  mean: number[];
  cls: number[];
  layouts: Record<Layout, string>;
}

const root = mkdtempSync(join(tmpdir(), 'kiln-hf-'));
let ref: Reference;
let copies = 0;

beforeAll(() => {
  ref = JSON.parse(runPython([join(REPO_ROOT, 'test', 'models', 'hf_tiny_bert.py'), join(root, 'layouts')])) as Reference;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh copy of a layout, for tests that edit or convert it. */
function copyOf(layout: Layout): string {
  const dir = join(root, `copy-${copies++}-${layout}`);
  cpSync(ref.layouts[layout], dir, { recursive: true });
  return dir;
}

function editJson(path: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(path, JSON.stringify(json));
}

function maxAbsDiff(actual: number[], expected: number[]): number {
  expect(actual.length).toBe(expected.length);
  return actual.reduce((worst, a, i) => Math.max(worst, Math.abs(a - expected[i]!)), 0);
}

/**
 * Loads `dir` and runs the imported encoder on the reference ids: hidden states and the
 * checkpoint's pooling (or `poolAs`). The checkpoint is disposed; its tensor names are returned.
 */
function runImported(dir: string, poolAs?: 'mean' | 'cls'): { ckpt: HuggingFaceCheckpoint; names: string[]; hidden: number[]; pooled: number[] } {
  const ckpt = loadHuggingFaceCheckpoint(dir);
  const names = [...ckpt.weights.keys()];
  const encoder = new BertEncoder(ckpt.encoder).eval();
  try {
    encoder.loadStateDict(ckpt.weights, { strict: false });
    return tidy(() => {
      const ids = tensor(ref.ids, { dtype: 'int64' });
      const mask = tensor(ref.mask, { dtype: 'int64' });
      const hidden = encoder.forward(ids, mask);
      const mode = poolAs ?? ckpt.pooling ?? 'mean';
      return { ckpt, names, hidden: hidden.toArray(), pooled: pool(mode, hidden, mask).toArray() };
    });
  } finally {
    encoder.dispose();
    disposeCheckpoint(ckpt);
  }
}

/** The HuggingFaceImportError `fn` throws (fails the test when it throws nothing or something else), with no tensor leaked. */
function importError(fn: () => unknown): string {
  const before = liveTensorCount();
  let caught: unknown;
  try {
    const result = fn();
    if (result !== null && typeof result === 'object' && 'weights' in result) disposeCheckpoint(result as HuggingFaceCheckpoint);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a HuggingFaceImportError').toBeInstanceOf(HuggingFaceImportError);
  expect(liveTensorCount(), 'tensors leaked by the failed import').toBe(before);
  return (caught as Error).message;
}

describe('sentence-transformers directory, transformer in the root (BertForMaskedLM names)', () => {
  it('reads the config, pooling, Normalize, max_seq_length and every tensor under Kiln names', () => {
    const dir = ref.layouts.st;
    expect(isHuggingFaceDirectory(dir)).toBe(true);
    const ckpt = loadHuggingFaceCheckpoint(dir);
    try {
      expect(ckpt.encoder).toEqual({
        vocabSize: 120, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 16, typeVocabSize: 2,
        hiddenDropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12, initStd: 0.02, padId: 0,
      });
      expect(ckpt).toMatchObject({ dir, transformerDir: dir, pooling: 'mean', normalize: true, maxSeqLength: 12, source: 'safetensors' });
      expect(ckpt.weightFiles).toEqual([join(dir, 'model.safetensors')]);
      expect(ckpt.tokenizerFile).toBe(join(dir, 'vocab.txt'));
      // 37 encoder tensors + position_ids + 6 cls.predictions.*
      expect(ckpt.weights.size).toBe(44);
      expect([...ckpt.weights.keys()].filter((n) => n.startsWith('bert.'))).toEqual([]);
      expect(ckpt.weights.get('cls.predictions.decoder.weight')?.shape).toEqual([120, 32]);
      expect(ckpt.weights.get('embeddings.position_ids')?.dtype).toBe('int64');
      expect([...encoderStateFrom(ckpt).keys()]).toEqual(new BertEncoderNames().names);
    } finally {
      disposeCheckpoint(ckpt);
    }
    expect(ckpt.weights.size).toBe(0);
  });

  it('BertEncoder on the imported weights matches PyTorch: hidden states [B, L, H] and mean pooling within 1e-5', () => {
    const { hidden, pooled } = runImported(ref.layouts.st);
    expect(hidden.length).toBe(4 * 9 * 32);
    expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
    expect(maxAbsDiff(pooled, ref.mean)).toBeLessThan(1e-5);
    // Not trivially equal: the outputs are O(1) and differ between positions.
    expect(Math.max(...ref.hidden.map(Math.abs))).toBeGreaterThan(0.5);
  });

  it('encoderFromCheckpoint builds the same encoder; dropout may be overridden, the shape may not', () => {
    const ckpt = loadHuggingFaceCheckpoint(ref.layouts.st);
    const encoder = encoderFromCheckpoint(ckpt, { hiddenDropout: 0 }).eval();
    try {
      expect(encoder.config.hiddenDropout).toBe(0);
      const hidden = tidy(() => encoder.forward(tensor(ref.ids, { dtype: 'int64' }), tensor(ref.mask, { dtype: 'int64' })).toArray());
      expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
    } finally {
      encoder.dispose();
      disposeCheckpoint(ckpt);
    }
  });

  it('the tokenizer read from vocab.txt encodes a sentence as the vocabulary implies', () => {
    const ckpt = loadHuggingFaceCheckpoint(ref.layouts.st);
    disposeCheckpoint(ckpt);
    const id = (t: string): number => ref.vocab.indexOf(t);
    const expected = ['[CLS]', 'the', 'run', '##ner', 'run', '##s', 'fast', '!', 'zebra', '[SEP]'].map((t) => (t === 'zebra' ? id('[UNK]') : id(t)));
    expect(Array.from(ckpt.tokenizer.encode('The runner RUNS fast! Zebra', 32))).toEqual(expected);
    expect(ckpt.tokenizer.vocabSize).toBe(120);
    expect(ckpt.tokenizer.padId).toBe(ckpt.encoder.padId);
  });
});

/** BertEncoder's parameter names for the test model, in registration order. */
class BertEncoderNames {
  readonly names: string[];
  constructor() {
    const m = new BertEncoder({ vocabSize: 120, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 16, typeVocabSize: 2, hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12, initStd: 0.02, padId: 0 });
    this.names = m.namedParameters().map(([n]) => n);
    m.dispose();
  }
}

describe('other layouts of the same weights', () => {
  it('0_Transformer/ (older sentence-transformers, BertModel names with pooler.*): cls pooling matches PyTorch', () => {
    const dir = ref.layouts.st0;
    expect(isHuggingFaceDirectory(dir)).toBe(true);
    const { ckpt, hidden, pooled } = runImported(dir);
    expect(ckpt).toMatchObject({ transformerDir: join(dir, '0_Transformer'), pooling: 'cls', normalize: false, maxSeqLength: null });
    expect(ckpt.tokenizerFile).toBe(join(dir, '0_Transformer', 'vocab.txt'));
    expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
    expect(maxAbsDiff(pooled, ref.cls)).toBeLessThan(1e-5);
  });

  it('TF-converted names (LayerNorm gamma/beta, BertForPreTraining): renamed to weight/bias, outputs match', () => {
    const { ckpt, names, hidden, pooled } = runImported(ref.layouts.tf, 'mean');
    expect(ckpt.pooling).toBeNull();
    expect(names.filter((n) => /gamma|beta/.test(n))).toEqual([]);
    expect(names).toContain('encoder.layer.1.output.LayerNorm.weight');
    expect(names).toContain('cls.predictions.transform.LayerNorm.bias');
    expect(names).toContain('cls.seq_relationship.weight');
    expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
    expect(maxAbsDiff(pooled, ref.mean)).toBeLessThan(1e-5);
  });

  it.each([
    ['bf16', 'bfloat16', 2 ** -8],
    ['f16', 'float16', 2 ** -10],
  ] as const)('%s safetensors load as %s, equal to the float32 weights up to rounding, and convert on loadStateDict', (layout, dtype, relError) => {
    const low = loadHuggingFaceCheckpoint(ref.layouts[layout]);
    const full = loadHuggingFaceCheckpoint(ref.layouts.st);
    const encoder = encoderFromCheckpoint(low);
    try {
      const state = encoder.stateDict();
      for (const [name, t] of encoderStateFrom(low)) {
        expect(t.dtype).toBe(dtype);
        const f32 = full.weights.get(name)!.toArray();
        const rounded = tidy(() => t.float().toArray());
        const excess = Math.max(...rounded.map((v, i) => Math.abs(v - f32[i]!) - relError * Math.abs(f32[i]!)));
        expect(excess, `${name}: further from the float32 weights than ${dtype} rounding allows`).toBeLessThanOrEqual(1e-7);
        expect(state.get(name)!.dtype).toBe('float32');
        expect(state.get(name)!.toArray()).toEqual(rounded);
      }
    } finally {
      encoder.dispose();
      disposeCheckpoint(low);
      disposeCheckpoint(full);
    }
  });

  it('sharded safetensors (model.safetensors.index.json) load as one checkpoint', () => {
    const dir = copyOf('st');
    const { tensors } = loadSafetensors(join(dir, 'model.safetensors'));
    const sorted = [...tensors.keys()].sort();
    const shards = [sorted.slice(0, 20), sorted.slice(20)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      saveSafetensors(join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])));
      for (const n of part) weightMap[n] = file;
    });
    for (const t of tensors.values()) t.dispose();
    rmSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    expect(isHuggingFaceDirectory(dir)).toBe(true);
    const { ckpt, names, hidden } = runImported(dir);
    expect(ckpt.weightFiles.length).toBe(2);
    expect(names.length).toBe(44);
    expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
  });

  it('tokenizer.json is preferred over vocab.txt and used as written (here: a cased normalizer)', () => {
    const dir = copyOf('st');
    const json = bertUncasedTokenizerJson(readVocab(join(dir, 'vocab.txt'))) as { normalizer: Record<string, unknown> };
    json.normalizer.lowercase = false;
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    const ckpt = loadHuggingFaceCheckpoint(dir);
    disposeCheckpoint(ckpt);
    expect(ckpt.tokenizerFile).toBe(join(dir, 'tokenizer.json'));
    expect(Array.from(ckpt.tokenizer.pieceIds('nurse Nurse'))).toEqual([ref.vocab.indexOf('nurse'), ref.vocab.indexOf('[UNK]')]);
  });
});

describe('pytorch_model.bin', () => {
  const hasSafetensors = existsSync(join(REPO_ROOT, '.cache', 'pylib', 'safetensors', '__init__.py'));

  /** Runs the command from the error message with the reference Python (python3 on PATH may lack torch). */
  function runConversion(message: string): void {
    const command = message.split('\n')[1]!.trim();
    expect(command.startsWith('python3 -c "')).toBe(true);
    execFileSync('bash', ['-c', command.replace(/^python3 /, `${PYTHON} `)], { env: { ...process.env, PYTHONPATH: join(REPO_ROOT, '.cache', 'pylib') }, stdio: 'pipe' });
  }

  it.each(['bin', 'bin_sharded'] as const)('%s: refused with a conversion command that works, after which the directory imports', (layout) => {
    const dir = copyOf(layout);
    expect(isHuggingFaceDirectory(dir)).toBe(true);
    const message = importError(() => loadHuggingFaceCheckpoint(dir));
    const file = layout === 'bin' ? 'pytorch_model.bin' : 'pytorch_model.bin.index.json';
    expect(message).toContain(`${join(dir, file)}: ${layout === 'bin' ? '' : 'sharded '}pytorch_model.bin (a Python pickle) cannot be read by Kiln`);
    expect(message).toContain('save_file');
    if (!hasSafetensors) return; // the conversion needs Python's safetensors (npm run refs unpacks it)
    runConversion(message);
    const { names, hidden } = runImported(dir);
    expect(names.length).toBe(44);
    expect(maxAbsDiff(hidden, ref.hidden)).toBeLessThan(1e-5);
  });
});

describe('refusals name the file and what is supported', () => {
  it.each([
    ['roberta', ['RobertaModel']],
    ['distilbert', ['DistilBertModel']],
    ['gpt2', ['GPT2LMHeadModel']],
  ])('model_type %s', (modelType, architectures) => {
    const dir = copyOf('st');
    editJson(join(dir, 'config.json'), (c) => Object.assign(c, { model_type: modelType, architectures }));
    const message = importError(() => loadHuggingFaceCheckpoint(dir));
    expect(message).toContain(`${join(dir, 'config.json')}: model_type '${modelType}' (${architectures[0]}) is not supported`);
    expect(message).toContain("model_type 'bert' (BertModel, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification)");
  });

  it('a config.json without model_type is accepted by its Bert architectures, refused otherwise', () => {
    const dir = copyOf('st');
    editJson(join(dir, 'config.json'), (c) => {
      delete c.model_type;
    });
    disposeCheckpoint(loadHuggingFaceCheckpoint(dir));
    editJson(join(dir, 'config.json'), (c) => Object.assign(c, { architectures: ['ElectraModel'] }));
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toContain('no model_type and architectures [ElectraModel] is not supported');
  });

  it.each([
    ['hidden_act', 'gelu_new', "hidden_act 'gelu_new' is not supported; Kiln's BertEncoder uses exact (erf) GELU"],
    ['hidden_act', 'relu', "hidden_act 'relu' is not supported"],
    ['position_embedding_type', 'relative_key', "position_embedding_type 'relative_key' is not supported"],
    ['is_decoder', true, 'is_decoder / add_cross_attention is set; Kiln imports bidirectional BERT encoders only'],
    ['num_attention_heads', 5, 'hidden_size 32 is not divisible by num_attention_heads 5'],
  ])('config.json %s: %j', (key, value, expected) => {
    const dir = copyOf('st');
    editJson(join(dir, 'config.json'), (c) => {
      c[key] = value;
    });
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toContain(`${join(dir, 'config.json')}: ${expected}`);
  });

  it('a tensor the encoder needs is missing: named', () => {
    const dir = copyOf('st');
    const path = join(dir, 'model.safetensors');
    const { tensors } = loadSafetensors(path);
    tensors.get('bert.encoder.layer.1.output.dense.weight')!.dispose();
    tensors.delete('bert.encoder.layer.1.output.dense.weight');
    saveSafetensors(path, tensors);
    for (const t of tensors.values()) t.dispose();
    const message = importError(() => loadHuggingFaceCheckpoint(dir));
    expect(message).toContain(`${path}: missing tensor(s) the BERT encoder needs: encoder.layer.1.output.dense.weight;`);
  });

  it('a layer count larger than the checkpoint holds: the missing layer is named', () => {
    const dir = copyOf('st');
    editJson(join(dir, 'config.json'), (c) => Object.assign(c, { num_hidden_layers: 3 }));
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toMatch(/missing tensor\(s\) the BERT encoder needs: encoder\.layer\.2\.attention\.self\.query\.weight, .*\(16 in all\)/);
  });

  it('a shape that disagrees with config.json: the tensor and both shapes are named', () => {
    const dir = copyOf('st');
    editJson(join(dir, 'config.json'), (c) => Object.assign(c, { intermediate_size: 48 }));
    const message = importError(() => loadHuggingFaceCheckpoint(dir));
    expect(message).toContain(`'bert.encoder.layer.0.intermediate.dense.weight' has shape [64, 32] but ${join(dir, 'config.json')} implies [48, 32] (intermediate_size, hidden_size)`);
    expect(message).toContain("'bert.encoder.layer.0.output.dense.weight' has shape [32, 64]");
  });

  it('a vocabulary whose size differs from vocab_size: both numbers and both files are named', () => {
    const dir = copyOf('st');
    const vocab = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n').filter((l) => l !== '');
    writeFileSync(join(dir, 'vocab.txt'), vocab.slice(0, 119).join('\n') + '\n');
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toContain(`${join(dir, 'vocab.txt')} has 119 tokens but ${join(dir, 'config.json')} says vocab_size 120`);
  });

  it('missing weights, config.json, tokenizer or directory: the path and what is expected', () => {
    const noWeights = copyOf('st');
    rmSync(join(noWeights, 'model.safetensors'));
    writeFileSync(join(noWeights, 'tf_model.h5'), '');
    expect(isHuggingFaceDirectory(noWeights)).toBe(false);
    expect(importError(() => loadHuggingFaceCheckpoint(noWeights))).toBe(
      `${noWeights}: no weights file; expected model.safetensors (or model.safetensors.index.json with its shards); found tf_model.h5 (TensorFlow/Keras), which Kiln cannot read`,
    );

    const noConfig = copyOf('st0');
    rmSync(join(noConfig, '0_Transformer', 'config.json'));
    expect(isHuggingFaceDirectory(noConfig)).toBe(false);
    expect(importError(() => loadHuggingFaceCheckpoint(noConfig))).toContain(`${join(noConfig, '0_Transformer', 'config.json')}: missing; expected a Hugging Face model directory`);

    const noVocab = copyOf('st');
    rmSync(join(noVocab, 'vocab.txt'));
    expect(importError(() => loadHuggingFaceCheckpoint(noVocab))).toContain(`${noVocab}: no tokenizer.json or vocab.txt`);

    expect(importError(() => loadHuggingFaceCheckpoint(join(root, 'nowhere')))).toContain('nowhere: no such directory');
    expect(isHuggingFaceDirectory(join(root, 'nowhere'))).toBe(false);
  });

  it('a cased model with only vocab.txt is refused (vocab.txt tokenizers are uncased)', () => {
    const dir = copyOf('st');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toContain('do_lower_case is false (a cased model)');
  });

  it('unsupported sentence-transformers modules and pooling modes', () => {
    const dense = copyOf('st');
    editJson(join(dense, 'modules.json'), (m) => {
      (m as unknown as unknown[]).push({ idx: 3, name: '3', path: '3_Dense', type: 'sentence_transformers.models.Dense' });
    });
    expect(importError(() => loadHuggingFaceCheckpoint(dense))).toContain('module sentence_transformers.models.Dense (3_Dense) is not supported');

    const max = copyOf('st');
    editJson(join(max, '1_Pooling', 'config.json'), (c) => Object.assign(c, { pooling_mode_mean_tokens: false, pooling_mode_max_tokens: true }));
    expect(importError(() => loadHuggingFaceCheckpoint(max))).toContain(`${join(max, '1_Pooling', 'config.json')}: pooling_mode_max_tokens is not supported`);

    const two = copyOf('st');
    editJson(join(two, '1_Pooling', 'config.json'), (c) => Object.assign(c, { pooling_mode_cls_token: true }));
    expect(importError(() => loadHuggingFaceCheckpoint(two))).toContain('pooling_mode_mean_tokens, pooling_mode_cls_token are all set (sentence-transformers concatenates them)');
  });

  it('two source tensors that map to one Kiln name (gamma and weight) are refused', () => {
    const dir = copyOf('st');
    const path = join(dir, 'model.safetensors');
    const { tensors } = loadSafetensors(path);
    const extra: Tensor = tidy(() => tensors.get('bert.embeddings.LayerNorm.weight')!.clone());
    tensors.set('bert.embeddings.LayerNorm.gamma', extra);
    saveSafetensors(path, tensors);
    for (const t of tensors.values()) t.dispose();
    expect(importError(() => loadHuggingFaceCheckpoint(dir))).toMatch(/tensors 'bert\.embeddings\.LayerNorm\.(gamma|weight)' and 'bert\.embeddings\.LayerNorm\.(gamma|weight)' both map to 'embeddings\.LayerNorm\.weight'/);
  });
});
