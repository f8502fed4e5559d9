/**
 * The cross-encoder strategy's scores, checked by hand: a query's positive and its negatives
 * scored jointly, the listwise loss over them, and, for a residual cross-encoder, the mining
 * run's score/τ added to each logit before the loss.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { manualSeed, noGrad, tidy } from '../../src/engine/index.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { createWeightedLoss } from '../../src/losses/index.js';
import { CrossEncoderModel, padPairsToTensors } from '../../src/models/index.js';
import type { CandidateSource } from '../../src/train/cross-encoder-negatives.js';
import { CrossEncoderStrategy } from '../../src/train/strategies/cross-encoder.js';
import { DATA_ROOT } from '../data/root.js';
import { tinyEncoder } from '../helpers/exported-model.js';

const tokenizer = WordPieceTokenizer.fromVocabFile(join(DATA_ROOT, 'bert-vocab', 'vocab.txt'));
const pairs = [
  { query: 'registered nurse', doc: 'nurse' },
  { query: 'java developer', doc: 'software developer' },
];
const poolTexts = ['nurse', 'software developer', 'data scientist', 'cook'];
const positivePoolIndex = Int32Array.from([0, 1]);
// Each pair's two mined candidates (pool indices), and the mining run's score of each text pair.
const mined = [Int32Array.from([2, 3]), Int32Array.from([2, 0])];
const runScore = (query: string, doc: string): number => 0.1 * (query.length % 7) + 0.05 * doc.length - 0.3 * Number(doc === 'cook');

const candidates: CandidateSource = {
  description: 'a fixed table',
  candidatesOf: (items) => Array.from(items, (i) => mined[i]!),
  drawRandom: () => [],
  teacherScores: (items, docs) => Float32Array.from(items.flatMap((i, row) => docs[row]!.map((d) => runScore(pairs[i]!.query, poolTexts[d]!)))),
  dispose: () => {},
};

function strategy(model: CrossEncoderModel, residualTemperature: number | null): CrossEncoderStrategy {
  return new CrossEncoderStrategy({
    model,
    loss: createWeightedLoss([{ name: 'infonce', temperature: 1 }]),
    pairs,
    candidates,
    positivePoolIndex,
    poolTexts,
    k: 2,
    randomNegatives: 0,
    batches: { next: () => Int32Array.from([0, 1]), state: () => null, restore: () => {} },
    tokenizer,
    maxLength: 32,
    seed: 3,
    device: 'cpu',
    residualTemperature,
  });
}

/** The model's logit of one text pair, alone. */
function logit(model: CrossEncoderModel, query: string, doc: string): number {
  return tidy(() => noGrad(() => model.score(padPairsToTensors([tokenizer.encodePair(query, doc, 32)], tokenizer.padId, 'cpu')).item()));
}

/**
 * Listwise cross-entropy with the positive first, by hand: mean over queries of
 * −s(q, d⁺) + log Σ_d exp s(q, d), over the positive and both candidates (their order does not matter).
 */
function listwiseByHand(score: (query: string, doc: string) => number): number {
  const perQuery = pairs.map(({ query, doc }, i) => {
    const all = [doc, ...Array.from(mined[i]!, (d) => poolTexts[d]!)].map((d) => score(query, d));
    return -all[0]! + Math.log(all.reduce((sum, s) => sum + Math.exp(s), 0));
  });
  return (perQuery[0]! + perQuery[1]!) / 2;
}

function stepLoss(model: CrossEncoderModel, residualTemperature: number | null): { loss: number; accuracy: number } {
  const s = strategy(model, residualTemperature);
  try {
    return tidy(() => {
      const out = s.step({ step: 0, microStep: 0, slice: 0 } as never);
      return { loss: out.loss.item(), accuracy: out.logs.pair_accuracy! };
    });
  } finally {
    s.dispose();
  }
}

describe('CrossEncoderStrategy', () => {
  manualSeed(11);
  const model = new CrossEncoderModel({ encoder: tinyEncoder(), pooling: 'cls' });
  model.eval(); // no dropout: the step's logits are the ones computed alone

  it('scores each query with its positive and mined candidates: the listwise loss of the logits', () => {
    const expected = listwiseByHand((q, d) => logit(model, q, d));
    expect(stepLoss(model, null).loss).toBeCloseTo(expected, 4);
  });

  it('a residual cross-encoder adds the run\'s score/τ to each logit before the loss', () => {
    const tau = 0.25;
    const expected = listwiseByHand((q, d) => logit(model, q, d) + runScore(q, d) / tau);
    expect(stepLoss(model, tau).loss).toBeCloseTo(expected, 4);
    // Not the logits alone: the run's scores move the loss.
    expect(Math.abs(expected - listwiseByHand((q, d) => logit(model, q, d)))).toBeGreaterThan(0.05);
  });

  it('with a zero classifier, a residual cross-encoder is exactly the run: loss and pair accuracy from run/τ alone', () => {
    const zeroed = new CrossEncoderModel({ encoder: tinyEncoder(), pooling: 'cls' });
    noGrad(() => {
      zeroed.classifier.weight.zero_();
      zeroed.classifier.bias!.zero_();
    });
    const tau = 0.05;
    const { loss, accuracy } = stepLoss(zeroed, tau);
    expect(loss).toBeCloseTo(listwiseByHand((q, d) => runScore(q, d) / tau), 4);
    // By hand: "registered nurse" scores nurse 0.45 against data scientist 0.90 and cook 0.10
    // (the positive loses); "java developer" scores software developer 0.90 against data
    // scientist 0.70 and nurse 0.25 (it wins).
    expect(accuracy).toBe(0.5);
    zeroed.dispose();
  });
});
