/**
 * The MLM strategy's data plumbing: the flat positions and labels of a masked batch point at
 * the tokens that were chosen, and the batch order resumes exactly from its state.
 */
import { describe, expect, it } from 'vitest';

import { tidy } from '../../src/engine/index.js';
import { Rng } from '../../src/data/rng.js';
import { IGNORE_INDEX, maskTokens } from '../../src/data/mlm.js';
import { maskBatch, ShuffledBatches } from '../../src/train/strategies/mlm.js';

const options = { maskId: 4, padId: 0, vocabSize: 50, specialIds: new Set([0, 1, 2, 3, 4]), maskProbability: 0.3 };

describe('maskBatch', () => {
  it('positions are b·L + t of every chosen token, labels the original ids, inputs masked as maskTokens does', () => {
    const sequences = [Int32Array.from([2, 10, 11, 12, 13, 14, 3]), Int32Array.from([2, 20, 21, 3]), Int32Array.from([2, 30, 31, 32, 33, 3])];
    // maskBatch draws from one stream in row order: replay it to know what each row got.
    const replay = new Rng(5);
    const rows = sequences.map((s) => maskTokens(s, options, replay));
    const batch = tidy(() => {
      const b = maskBatch(sequences, options, new Rng(5), 'cpu');
      return { ids: b.inputIds.toArray(), positions: b.positions.toArray(), labels: b.labels.toArray(), shape: b.inputIds.shape, mask: b.attentionMask.toArray() };
    });
    expect(rows.every((row) => row.labels.some((l) => l !== IGNORE_INDEX))).toBe(true);
    expect(batch.shape).toEqual([3, 7]);
    const wantPositions: number[] = [];
    const wantLabels: number[] = [];
    rows.forEach((row, r) => {
      expect(batch.ids.slice(r * 7, r * 7 + row.inputIds.length)).toEqual([...row.inputIds]);
      expect(batch.mask.slice(r * 7, (r + 1) * 7)).toEqual([...new Array(row.inputIds.length).fill(1), ...new Array(7 - row.inputIds.length).fill(0)]);
      row.labels.forEach((label, t) => {
        if (label !== IGNORE_INDEX) {
          wantPositions.push(r * 7 + t);
          wantLabels.push(label);
        }
      });
    });
    expect(batch.positions).toEqual(wantPositions);
    expect(batch.labels).toEqual(wantLabels);
    // Each label is the original token at its position.
    batch.positions.forEach((p, i) => expect(sequences[Math.floor(p / 7)]![p % 7]).toBe(batch.labels[i]));
  });
});

describe('ShuffledBatches', () => {
  it('covers every item once per epoch and resumes the same sequence from its state', () => {
    const a = new ShuffledBatches(10, 3, 7);
    const epoch = [a.next(), a.next(), a.next()].flatMap((b) => [...b]);
    expect(new Set(epoch).size).toBe(9); // 3 full batches; the 10th item waits for another epoch
    const saved = a.state();
    const rest = [a.next(), a.next(), a.next()].map((b) => [...b]);
    const b = new ShuffledBatches(10, 3, 7);
    b.restore(saved);
    expect([b.next(), b.next(), b.next()].map((x) => [...x])).toEqual(rest);
    expect(() => new ShuffledBatches(11, 3, 7).restore(saved)).toThrow(/10 training sequences; this corpus has 11/);
  });
});

describe('MlmStrategy', () => {
  it('learns: on a small fixed corpus the masked-token accuracy rises far above chance within 300 steps', async () => {
    const { manualSeed, AdamW } = await import('../../src/engine/index.js');
    const { MaskedLanguageModel } = await import('../../src/models/index.js');
    const { createWeightedLoss } = await import('../../src/losses/index.js');
    const { MlmStrategy } = await import('../../src/train/strategies/mlm.js');
    const { evaluateMaskedLm, maskHeldOut } = await import('../../src/eval/masked-lm.js');
    manualSeed(3);
    // 8 sequences over a 40-token vocabulary, each a fixed pattern: a token predicts its neighbours.
    const sequences = Array.from({ length: 8 }, (_, s) => Int32Array.from([2, ...Array.from({ length: 10 }, (_, t) => 5 + ((s * 3 + t) % 35)), 3]));
    const mask = { ...options, vocabSize: 40, maskProbability: 0.15 };
    const model = new MaskedLanguageModel({ encoder: { vocabSize: 40, hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, maxPositions: 16, typeVocabSize: 2, hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12, initStd: 0.02, padId: 0 } });
    const loss = createWeightedLoss([{ name: 'masked_lm' }]);
    const strategy = new MlmStrategy({ model, loss, sequences, batches: new ShuffledBatches(8, 8, 1), mask, seed: 1, device: 'cpu' });
    const optimizer = new AdamW([{ params: model.parameters(), lr: 3e-3 }]);
    const heldOut = maskHeldOut(sequences, mask, 9);
    const before = evaluateMaskedLm(model, heldOut, { batchSize: 8, precision: 'fp32', device: 'cpu' });
    for (let step = 0; step < 300; step++) {
      tidy(() => strategy.step({ step, microStep: 0, slice: 0 }).loss.backward());
      optimizer.step();
      optimizer.zeroGrad();
    }
    const after = evaluateMaskedLm(model, heldOut, { batchSize: 8, precision: 'fp32', device: 'cpu' });
    expect(before.mlm_accuracy).toBeLessThan(0.2);
    expect(after.mlm_accuracy).toBeGreaterThan(0.6);
    expect(after.mlm_loss).toBeLessThan(before.mlm_loss / 2);
    optimizer.dispose();
    model.dispose();
    loss.dispose();
  });
});
