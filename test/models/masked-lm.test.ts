/**
 * `MaskedLanguageModel` against PyTorch: test/models/masked_lm_reference.py (Debian's
 * /usr/bin/python3 with torch 1.13; no `transformers`) is an independent plain-torch BERT plus
 * MLM head that loads the weights Kiln saves from `stateDict()` with `saveSafetensors`. On a
 * ragged, padded batch with predictions at chosen flat positions (out of order, across every
 * sequence), the logits must agree to 1e-5 and, after a cross-entropy backward, so must the
 * gradients. The word-embedding gradient is checked as a tied one: it is the sum of the input
 * lookup's part and the output layer's part (the reference computes both apart), so rows that
 * the lookup never touches (the pad row, ids absent from the batch) still get the output part.
 *
 * Also: the tied matrix is one parameter (`encoder.embeddings.word_embeddings.weight`, no
 * `cls.predictions.decoder.weight`), and `stateDict()` round-trips through safetensors into a
 * fresh model with identical logits and the tie intact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { crossEntropy, loadSafetensors, manualSeed, noGrad, randint, saveSafetensors, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { BertEncoder, MaskedLanguageModel, type EncoderConfig } from '../../src/models/index.js';
import { expectClose } from '../helpers/close.js';
import { REPO_ROOT, runPython } from '../helpers/python.js';

const CONFIG: EncoderConfig = {
  vocabSize: 50,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 64,
  maxPositions: 16,
  typeVocabSize: 2,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  layerNormEps: 1e-12,
  initStd: 0.02,
  padId: 0,
};
const MASK_ID = 4;
const LENGTHS = [9, 5, 1, 7]; // ragged: padding on the right, one text of a single token
const SEQ = 9;
/** Flat indices b·SEQ + t into the [B·L] tokens: real tokens of every sequence, out of order. */
const POSITIONS = [13, 0, 27, 8, 18, 4, 33, 9, 30];
const TARGETS = POSITIONS.map((_, i) => (7 * i + 3) % CONFIG.vocabSize);
const WORD = 'encoder.embeddings.word_embeddings.weight';
const GRAD_PARAMS = [
  WORD,
  'encoder.embeddings.position_embeddings.weight',
  'encoder.encoder.layer.0.attention.self.query.weight',
  'encoder.encoder.layer.1.output.LayerNorm.bias',
  'cls.predictions.transform.dense.weight',
  'cls.predictions.transform.LayerNorm.weight',
  'cls.predictions.bias',
];

interface Reference {
  names: string[];
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
  grad_lookup: number[];
  grad_output: number[];
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-mlm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * BERT's N(0, 0.02²) init gives near-uniform attention and near-equal logits, which would hide
 * masking, scaling and head bugs; re-draw every parameter at a scale where they matter.
 */
function randomize(model: MaskedLanguageModel, seed: number): void {
  manualSeed(seed);
  noGrad(() => {
    for (const [name, p] of model.namedParameters()) p.normal_(/LayerNorm\.weight$/.test(name) ? 1 : 0, 0.3);
  });
}

/** Random ids right-padded with the pad id to LENGTHS, with [MASK] at the predicted positions. */
function batch(): { inputIds: Tensor; attentionMask: Tensor; ids: number[][]; mask: number[][] } {
  manualSeed(11);
  const drawn = tidy(() => randint(MASK_ID + 1, CONFIG.vocabSize, [LENGTHS.length, SEQ], { dtype: 'int64' }).toArray());
  const mask = LENGTHS.map((n) => Array.from({ length: SEQ }, (_, t) => (t < n ? 1 : 0)));
  const ids = mask.map((row, b) => row.map((m, t) => (m === 1 ? drawn[b * SEQ + t]! : CONFIG.padId)));
  for (const p of POSITIONS) ids[Math.floor(p / SEQ)]![p % SEQ] = MASK_ID;
  return { inputIds: tensor(ids, { dtype: 'int64' }), attentionMask: tensor(mask, { dtype: 'int64' }), ids, mask };
}

describe('MaskedLanguageModel against a plain-torch BERT MLM on the same weights', () => {
  let model: MaskedLanguageModel;
  let input: ReturnType<typeof batch>;
  let positions: Tensor;
  let weightsPath: string;
  let ref: Reference;
  const kiln = { logits: [] as number[], loss: 0, grads: {} as Record<string, number[]> };

  beforeAll(() => {
    model = new MaskedLanguageModel({ encoder: CONFIG }).eval();
    randomize(model, 3);
    input = batch();
    positions = tensor(POSITIONS, { dtype: 'int64' });
    weightsPath = join(dir, 'mlm.safetensors');
    saveSafetensors(weightsPath, model.stateDict());

    tidy(() => {
      const logits = model.predict(input, positions); // (N, V)
      kiln.logits = logits.toArray();
      const loss = crossEntropy(logits, tensor(TARGETS, { dtype: 'int64' }));
      loss.backward();
      kiln.loss = loss.item();
    });
    const params = model.stateDict();
    for (const name of GRAD_PARAMS) {
      const g = params.get(name)?.grad;
      if (g === null || g === undefined) throw new Error(`no gradient for ${name}`);
      kiln.grads[name] = g.toArray();
      g.dispose();
    }
    model.zeroGrad();

    const request = { config: CONFIG, weights: weightsPath, ids: input.ids, mask: input.mask, positions: POSITIONS, targets: TARGETS, grad_params: GRAD_PARAMS };
    ref = JSON.parse(runPython([join(REPO_ROOT, 'test', 'models', 'masked_lm_reference.py')], { input: JSON.stringify(request) })) as Reference;
  });

  afterAll(() => {
    model?.dispose();
    input?.inputIds.dispose();
    input?.attentionMask.dispose();
    positions?.dispose();
  });

  it('the batch is ragged and padded, and every predicted position is a real token holding [MASK]', () => {
    expect(input.mask.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(LENGTHS);
    for (const p of POSITIONS) {
      expect(input.mask[Math.floor(p / SEQ)]![p % SEQ], `position ${p} is a real token`).toBe(1);
      expect(input.ids[Math.floor(p / SEQ)]![p % SEQ]).toBe(MASK_ID);
    }
  });

  it('the saved weights hold the word embeddings once and no cls.predictions.decoder.weight', () => {
    expect(ref.names).toContain(WORD);
    expect(ref.names).not.toContain('cls.predictions.decoder.weight');
    expect(ref.names).toEqual([...model.stateDict().keys()].sort());
  });

  it('logits [N, V] at the chosen flat positions match torch to 1e-5, in the order of the positions', () => {
    expect(kiln.logits.length).toBe(POSITIONS.length * CONFIG.vocabSize);
    expect(Math.max(...ref.logits.map(Math.abs))).toBeGreaterThan(1); // not trivially near zero
    expectClose(kiln.logits, ref.logits, { rtol: 1e-5, atol: 1e-5, what: 'MLM logits' });
    expect(kiln.loss).toBeCloseTo(ref.loss, 4);
  });

  it('after a cross-entropy backward, gradients of the encoder, the head and the tied word embeddings match torch', () => {
    for (const name of GRAD_PARAMS) {
      const g = kiln.grads[name]!;
      // Gradients are sums over the batch of O(1) terms: absolute error scales with their size.
      const scale = Math.max(...ref.grads[name]!.map(Math.abs));
      expect(scale, `${name}: the reference gradient is not trivially zero`).toBeGreaterThan(1e-3);
      expectClose(g, ref.grads[name]!, { rtol: 1e-4, atol: 2e-5 * scale, what: `grad ${name}` });
    }
  });

  it('the word-embedding gradient is the input lookup part plus the output layer part; rows the lookup never reads get the output part only', () => {
    const H = CONFIG.hiddenSize;
    const row = (g: number[], id: number): number[] => g.slice(id * H, (id + 1) * H);
    const kilnGrad = kiln.grads[WORD]!;
    const scale = Math.max(...ref.grads[WORD]!.map(Math.abs));
    // Both uses contribute, and the reference's tied gradient is their sum.
    expect(Math.max(...ref.grad_lookup.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(Math.max(...ref.grad_output.map(Math.abs))).toBeGreaterThan(1e-3);
    expectClose(ref.grads[WORD]!, ref.grad_lookup.map((g, i) => g + ref.grad_output[i]!), { rtol: 1e-5, atol: 1e-7 * scale, what: 'torch: tied = lookup + output' });
    expectClose(kilnGrad, ref.grad_lookup.map((g, i) => g + ref.grad_output[i]!), { rtol: 1e-4, atol: 2e-5 * scale, what: 'Kiln tied grad vs lookup + output' });

    // The pad row: no lookup gradient (padding_idx), but the output layer scores it like any other id.
    expect(row(ref.grad_lookup, CONFIG.padId).every((v) => v === 0)).toBe(true);
    expect(Math.max(...row(ref.grad_output, CONFIG.padId).map(Math.abs))).toBeGreaterThan(1e-4);
    expectClose(row(kilnGrad, CONFIG.padId), row(ref.grad_output, CONFIG.padId), { rtol: 1e-4, atol: 2e-5 * scale, what: 'pad row' });

    // An id absent from the batch: its row's gradient comes from the output layer alone.
    const present = new Set(input.ids.flat());
    const absent = Array.from({ length: CONFIG.vocabSize }, (_, id) => id).filter((id) => !present.has(id));
    expect(absent.length).toBeGreaterThan(0);
    for (const id of absent) {
      expect(row(ref.grad_lookup, id).every((v) => v === 0)).toBe(true);
      expectClose(row(kilnGrad, id), row(ref.grad_output, id), { rtol: 1e-4, atol: 2e-5 * scale, what: `row of absent id ${id}` });
    }
    // And an id the lookup reads ([MASK], at every predicted position) gets both parts.
    expect(Math.max(...row(ref.grad_lookup, MASK_ID).map(Math.abs))).toBeGreaterThan(1e-4);
  });

  it('namedParameters lists encoder.embeddings.word_embeddings.weight once and no cls.predictions.decoder.weight; the decoder holds that very tensor', () => {
    const names = model.namedParameters().map(([name]) => name);
    expect(names.filter((n) => n === WORD)).toHaveLength(1);
    expect(names).not.toContain('cls.predictions.decoder.weight');
    // A module's own parameters come before its children's (the output bias before the transform).
    expect(names.filter((n) => n.startsWith('cls.'))).toEqual([
      'cls.predictions.bias',
      'cls.predictions.transform.dense.weight',
      'cls.predictions.transform.dense.bias',
      'cls.predictions.transform.LayerNorm.weight',
      'cls.predictions.transform.LayerNorm.bias',
    ]);
    expect(model.cls.predictions.decoder.weight).toBe(model.encoder.embeddings.wordEmbeddings.weight);
    expect(new Set(model.parameters()).size).toBe(model.parameters().length);
    const encoderOnly = new BertEncoder(CONFIG);
    const H = CONFIG.hiddenSize;
    expect(model.parameterCount()).toBe(encoderOnly.parameterCount() + (H * H + H) + 2 * H + CONFIG.vocabSize); // transform + LayerNorm + output bias
    encoderOnly.dispose();
  });

  it('stateDict → saveSafetensors → loadSafetensors → loadStateDict gives a fresh model identical logits, with the tie intact', () => {
    manualSeed(99);
    const fresh = new MaskedLanguageModel({ encoder: CONFIG }).eval();
    const loaded = loadSafetensors(weightsPath);
    try {
      const before = tidy(() => fresh.predict(input, positions).toArray());
      expect(before).not.toEqual(kiln.logits);
      fresh.loadStateDict(loaded.tensors);
      expect(fresh.cls.predictions.decoder.weight).toBe(fresh.encoder.embeddings.wordEmbeddings.weight);
      expect(tidy(() => fresh.predict(input, positions).toArray())).toEqual(tidy(() => model.predict(input, positions).toArray()));
    } finally {
      for (const t of loaded.tensors.values()) t.dispose();
      fresh.dispose();
    }
  });
});
