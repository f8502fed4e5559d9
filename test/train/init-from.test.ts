/**
 * `model.init_from`: a new model starts from a Kiln run (an MLM pretraining run) or a Hugging
 * Face BERT directory written by PyTorch; the report names what loaded, what is new and what
 * was skipped; a shape mismatch names the tensor; `runs/<name>` finds the newest completed run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { manualSeed, noGrad, saveSafetensors, tensor, tidy } from '../../src/engine/index.js';
import { bertUncasedTokenizerJson, readVocab } from '../../src/data/tokenizer.js';
import { CrossEncoderModel, MaskedLanguageModel, TwoTowerModel, type EncoderConfig, type KindedModel, type TwoTowerConfig } from '../../src/models/index.js';
import { applyInitSource, applyWeights, formatInitReport, lineageOf, resolveInitSource } from '../../src/train/init-from.js';
import { RunDirectory } from '../../src/track/run-dir.js';
import { ConfigError } from '../../src/config/errors.js';
import { REPO_ROOT, runPython } from '../helpers/python.js';
import { DATA_ROOT } from '../data/root.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-init-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const VOCAB = join(DATA_ROOT, 'bert-vocab', 'vocab.txt');
const encoder: EncoderConfig = {
  vocabSize: 30522, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, maxPositions: 24, typeVocabSize: 2,
  hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12, initStd: 0.02, padId: 0,
};

/** Writes a Kiln run directory holding a (seeded, random) masked LM, as `kiln train` would. */
function writeMlmRun(path: string, seed: number): MaskedLanguageModel {
  mkdirSync(path, { recursive: true });
  manualSeed(seed);
  const model = new MaskedLanguageModel({ encoder });
  writeFileSync(join(path, 'config.yaml'), 'name: mlm\n');
  writeFileSync(join(path, 'model.json'), JSON.stringify({ kind: 'masked-lm', encoder, maxLength: { sequence: 24 } }));
  writeFileSync(join(path, 'tokenizer.json'), JSON.stringify(bertUncasedTokenizerJson(readVocab(VOCAB))));
  noGrad(() => saveSafetensors(join(path, 'model.safetensors'), model.stateDict()));
  writeFileSync(join(path, 'summary.json'), JSON.stringify({ status: 'completed' }));
  return model;
}

function twoTower(config: Partial<TwoTowerConfig> = {}): KindedModel {
  const json: TwoTowerConfig = { encoder, pooling: 'mean', towers: 'shared', prompts: {}, head: { type: 'hadamard_mlp', mlpHidden: 8 }, ...config };
  return { kind: 'two-tower', model: new TwoTowerModel(json), json: { kind: 'two-tower', ...json, maxLength: { query: 24, doc: 24 } } };
}

const values = (t: { toArray(): number[] }): number[] => tidy(() => t.toArray());

describe('init_from a Kiln MLM run', () => {
  it('fills every encoder tensor of a two-tower model, leaves its head new and skips the MLM head', () => {
    const source = writeMlmRun(join(root, 'mlm-run'), 1);
    const init = resolveInitSource(join(root, 'mlm-run'));
    expect(init.kind).toBe('kiln-run');
    expect(init.encoder).toEqual(encoder);
    expect(init.tokenizer.vocabSize).toBe(30522);
    manualSeed(2);
    const target = twoTower();
    const report = applyInitSource(target, init);
    const encoderNames = target.model.namedParameters().map(([n]) => n).filter((n) => n.startsWith('encoder.'));
    expect(report.loaded).toEqual(encoderNames);
    expect(report.fresh).toEqual(target.model.namedParameters().map(([n]) => n).filter((n) => n.startsWith('head.')));
    expect(report.fresh.length).toBeGreaterThan(0);
    expect(report.skipped.sort()).toEqual(['cls.predictions.bias', 'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.transform.LayerNorm.weight', 'cls.predictions.transform.dense.bias', 'cls.predictions.transform.dense.weight']);
    // The values are the source's, tensor by tensor.
    const sourceState = source.stateDict();
    for (const name of encoderNames) expect(values(target.model.stateDict().get(name)!), name).toEqual(values(sourceState.get(name)!));
    source.dispose();
    target.model.dispose();
  });

  it('fills both towers of a separate-tower model from the one source encoder', () => {
    const source = writeMlmRun(join(root, 'mlm-run-2'), 3);
    const target = twoTower({ towers: 'separate' });
    const report = applyInitSource(target, resolveInitSource(join(root, 'mlm-run-2')));
    expect(report.loaded.filter((n) => n.startsWith('query_encoder.')).length).toBe(report.loaded.filter((n) => n.startsWith('doc_encoder.')).length);
    const word = 'embeddings.word_embeddings.weight';
    expect(values(target.model.stateDict().get(`doc_encoder.${word}`)!)).toEqual(values(source.stateDict().get(`encoder.${word}`)!));
    source.dispose();
    target.model.dispose();
  });

  it('a tensor whose shape differs is an error naming it and both shapes', () => {
    const target = twoTower();
    const weights = new Map([['embeddings.position_embeddings.weight', tensor(new Array(8 * 16).fill(0), { shape: [8, 16] })]]);
    expect(() => applyWeights(target, weights, { path: '/x', kind: 'kiln-run' })).toThrow(/tensor 'embeddings\.position_embeddings\.weight' has shape \[8, 16\], but 'encoder\.embeddings\.position_embeddings\.weight' of this model is \[24, 16\]/);
    for (const t of weights.values()) t.dispose();
    target.model.dispose();
  });

  it('a cross-encoder from a single-text run starts segment 1 as the source\'s segment 0; from a cross-encoder run it keeps segment 1', () => {
    const source = writeMlmRun(join(root, 'mlm-run-pairs'), 6);
    const table = 'encoder.embeddings.token_type_embeddings.weight';
    const [segment0, segment1] = [0, 1].map((row) => tidy(() => source.stateDict().get(table)!.select(0, row).toArray()));
    expect(segment0).not.toEqual(segment1); // two independent random rows: the MLM never read segment 1
    const crossEncoder = (): KindedModel => {
      const json = { encoder, pooling: 'mean' as const };
      return { kind: 'cross-encoder', model: new CrossEncoderModel(json), json: { kind: 'cross-encoder', ...json, maxLength: { pair: 24 } } };
    };
    const init = resolveInitSource(join(root, 'mlm-run-pairs'));
    expect(init.trainedSecondSegment).toBe(false);
    const target = crossEncoder();
    const report = applyInitSource(target, init, { pairInput: true });
    expect(report.secondSegmentFromFirst).toEqual([table]);
    expect(formatInitReport(report)).toMatch(/segment 1 of encoder\.embeddings\.token_type_embeddings\.weight starts as segment 0/);
    const rows = (model: KindedModel): number[][] => [0, 1].map((row) => tidy(() => model.model.stateDict().get(table)!.select(0, row).toArray()));
    expect(rows(target)).toEqual([segment0, segment0]);
    // The copy wrote into the model's own parameter, and the rest loaded unchanged.
    expect(values(target.model.stateDict().get('encoder.embeddings.word_embeddings.weight')!)).toEqual(values(source.stateDict().get('encoder.embeddings.word_embeddings.weight')!));
    // Without pairInput (a two-tower target) nothing is copied.
    const plain = crossEncoder();
    expect(applyInitSource(plain, init).secondSegmentFromFirst).toEqual([]);
    expect(rows(plain)).toEqual([segment0, segment1]);

    // A cross-encoder run trained segment 1: a cross-encoder started from it keeps both rows.
    const ceRun = join(root, 'ce-run');
    mkdirSync(ceRun, { recursive: true });
    writeFileSync(join(ceRun, 'model.json'), JSON.stringify({ kind: 'cross-encoder', encoder, pooling: 'mean', maxLength: { pair: 24 } }));
    writeFileSync(join(ceRun, 'tokenizer.json'), JSON.stringify(bertUncasedTokenizerJson(readVocab(VOCAB))));
    noGrad(() => saveSafetensors(join(ceRun, 'model.safetensors'), plain.model.stateDict()));
    const fromCe = resolveInitSource(ceRun);
    expect(fromCe.trainedSecondSegment).toBe(true);
    const again = crossEncoder();
    expect(applyInitSource(again, fromCe, { pairInput: true }).secondSegmentFromFirst).toEqual([]);
    expect(rows(again)).toEqual([segment0, segment1]);
    for (const m of [source, target.model, plain.model, again.model]) m.dispose();
  });

  it('runs/<name> resolves to the newest completed run of that name; a missing source is a config error', () => {
    const runs = join(root, 'runs');
    writeMlmRun(join(runs, 'pre-20261201-100000'), 4).dispose();
    writeMlmRun(join(runs, 'pre-20261201-110000'), 5).dispose();
    mkdirSync(join(runs, 'pre-20261201-120000')); // started, never finished: no summary.json
    expect(RunDirectory.resolveReference(join(runs, 'pre'))).toBe(join(runs, 'pre-20261201-110000'));
    expect(resolveInitSource(join(runs, 'pre')).path).toBe(join(runs, 'pre-20261201-110000'));
    expect(() => resolveInitSource(join(runs, 'nothing'))).toThrow(ConfigError);
    expect(() => resolveInitSource(join(runs, 'nothing'))).toThrow(/model\.init_from: .*nothing is not a directory/);
  });
});

describe('init_from a Hugging Face directory written by PyTorch', () => {
  let dir: string;
  beforeAll(() => {
    const ref = JSON.parse(runPython([join(REPO_ROOT, 'test', 'models', 'hf_tiny_bert.py'), join(root, 'hf')])) as { layouts: Record<string, string> };
    dir = ref.layouts['st']!;
  });

  it('a masked LM takes the encoder and the MLM head; the pooler and position ids are skipped', () => {
    const init = resolveInitSource(dir);
    expect(init.kind).toBe('hugging-face');
    expect(init.trainedSecondSegment).toBe(true); // BERT's next-sentence pretraining trained segment 1
    expect(init.pooling).toBe('mean');
    const target: KindedModel = { kind: 'masked-lm', model: new MaskedLanguageModel({ encoder: init.encoder }), json: { kind: 'masked-lm', encoder: init.encoder, maxLength: { sequence: 12 } } };
    const report = applyInitSource(target, init);
    expect(report.fresh).toEqual([]);
    expect(report.loaded).toEqual(target.model.namedParameters().map(([n]) => n));
    expect(report.skipped.sort()).toEqual(['embeddings.position_ids']);
    target.model.dispose();
  });

  it('a two-tower run started from it passes BERT\'s trained segment 1 on: a cross-encoder from that run keeps it', () => {
    const init = resolveInitSource(dir);
    const tower = twoTower({ encoder: init.encoder });
    applyInitSource(tower, init);
    const table = 'encoder.embeddings.token_type_embeddings.weight';
    const [segment0, segment1] = [0, 1].map((row) => tidy(() => tower.model.stateDict().get(table)!.select(0, row).toArray()));
    expect(segment0).not.toEqual(segment1);
    // The run directory as `kiln train` writes it: model.json records where the weights started.
    const towerRun = join(root, 'tower-from-hf');
    mkdirSync(towerRun, { recursive: true });
    const json = { ...tower.json, ...lineageOf(init) };
    expect(json.initFrom).toEqual({ path: dir, kind: 'hugging-face', trainedSecondSegment: true });
    writeFileSync(join(towerRun, 'model.json'), JSON.stringify(json));
    writeFileSync(join(towerRun, 'tokenizer.json'), JSON.stringify(init.tokenizer.toJSON()));
    noGrad(() => saveSafetensors(join(towerRun, 'model.safetensors'), tower.model.stateDict()));
    const fromTower = resolveInitSource(towerRun);
    expect(fromTower.trainedSecondSegment).toBe(true);
    const ce: KindedModel = { kind: 'cross-encoder', model: new CrossEncoderModel({ encoder: init.encoder, pooling: 'cls' }), json: { kind: 'cross-encoder', encoder: init.encoder, pooling: 'cls', maxLength: { pair: 12 } } };
    expect(applyInitSource(ce, fromTower, { pairInput: true }).secondSegmentFromFirst).toEqual([]);
    expect([0, 1].map((row) => tidy(() => ce.model.stateDict().get(table)!.select(0, row).toArray()))).toEqual([segment0, segment1]);
    // Without the record (a run written before it existed) the source counts as single-text.
    writeFileSync(join(towerRun, 'model.json'), JSON.stringify(tower.json));
    expect(resolveInitSource(towerRun).trainedSecondSegment).toBe(false);
    for (const m of [tower.model, ce.model]) m.dispose();
  });

  it('kiln train with a missing init_from exits 2 and writes nothing', () => {
    const runs = join(root, 'cli-runs');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'kiln.js'), 'train', '--config', 'configs/tiny.yaml', '--runs', runs, '--set', `model.init_from=${join(root, 'missing')}`], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, KILN_DATA: DATA_ROOT },
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/model\.init_from: .*missing is not a directory/);
    expect(existsSync(runs)).toBe(false);
  });
});
