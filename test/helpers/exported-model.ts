/**
 * Small models for export, embedding and serving tests: run directories (model.json,
 * model.safetensors, tokenizer.json from the real BERT vocabulary) holding randomly
 * initialised two-tower and cross-encoder models, and their `kiln export` directories.
 * Random weights are enough here: these tests check that the exported graph computes what
 * the eager model computes, not that the model is good.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { manualSeed, saveSafetensors } from '../../src/engine/index.js';
import { CrossEncoderModel, TwoTowerModel, type EncoderConfig, type PoolingMode, type HeadType } from '../../src/models/index.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { exportModel, loadExportableRun, DEFAULT_OPSET } from '../../src/export/export.js';
import type { GraphOperators, Quantization } from '../../src/export/bert-graph.js';
import { DATA_ROOT } from '../data/root.js';

export const VOCAB_PATH = join(DATA_ROOT, 'bert-vocab', 'vocab.txt');

export function tinyEncoder(overrides: Partial<EncoderConfig> = {}): EncoderConfig {
  return {
    vocabSize: 30522, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 64, typeVocabSize: 2,
    hiddenDropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12, initStd: 0.1, padId: 0, ...overrides,
  };
}

export interface TinyRunOptions {
  kind?: 'two-tower' | 'cross-encoder';
  pooling?: PoolingMode;
  head?: HeadType;
  towers?: 'shared' | 'separate';
  prompts?: Record<string, string>;
  seed?: number;
}

/** A run directory with a random tiny model, as `kiln train` would leave it (without config.yaml). */
export function tinyRun(options: TinyRunOptions = {}): string {
  manualSeed(options.seed ?? 7);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-run-'));
  const encoder = tinyEncoder();
  let state: Map<string, import('../../src/engine/index.js').Tensor>;
  let modelJson: object;
  if ((options.kind ?? 'two-tower') === 'two-tower') {
    const config = { encoder, pooling: options.pooling ?? 'mean', towers: options.towers ?? 'shared', prompts: options.prompts ?? {}, head: { type: options.head ?? 'cosine', mlpHidden: 16 } } as const;
    const model = new TwoTowerModel(config);
    state = model.stateDict();
    modelJson = { kind: 'two-tower', ...config, maxLength: { query: 24, doc: 16 } };
  } else {
    const config = { encoder, pooling: options.pooling ?? 'cls' } as const;
    const model = new CrossEncoderModel(config);
    state = model.stateDict();
    modelJson = { kind: 'cross-encoder', ...config, maxLength: { pair: 40 } };
  }
  saveSafetensors(join(dir, 'model.safetensors'), state);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(WordPieceTokenizer.fromVocabFile(VOCAB_PATH).toJSON()));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ metrics: { 'tiny/mrr': 0.5 } }));
  return dir;
}

/** Exports a run to a fresh temporary directory. */
export function exportRunTo(runDir: string, options: { quantize?: Quantization; opset?: number; operators?: GraphOperators } = {}): string {
  const out = join(mkdtempSync(join(tmpdir(), 'kiln-export-')), 'model');
  const { exportable, source } = loadExportableRun(runDir);
  exportModel(exportable, source, out, { quantize: options.quantize ?? 'none', opset: options.opset ?? DEFAULT_OPSET, ...(options.operators === undefined ? {} : { operators: options.operators }) });
  exportable.model.dispose();
  return out;
}

let cached: Promise<{ twoTower: string; crossEncoder: string }> | undefined;

/** Exported directories of a tiny two-tower model (shared, mean pooling, cosine) and a tiny cross-encoder; built once per test file. */
export function exportedTinyModels(): Promise<{ twoTower: string; crossEncoder: string }> {
  cached ??= Promise.resolve().then(() => ({
    twoTower: exportRunTo(tinyRun({ kind: 'two-tower', prompts: { title: 'job title: {text}' } })),
    crossEncoder: exportRunTo(tinyRun({ kind: 'cross-encoder' })),
  }));
  return cached;
}
