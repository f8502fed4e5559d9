/** The learning-rate schedule against hand-computed values. */
import { describe, expect, it } from 'vitest';
import { learningRateAt } from '../../src/train/schedule.js';

describe('learningRateAt', () => {
  const base = { lr: 1e-3, totalSteps: 110, warmupSteps: 10, minLrRatio: 0 };

  it('warms up linearly: (s + 1) / W of the peak', () => {
    expect(learningRateAt(0, { ...base, schedule: 'cosine' })).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(4, { ...base, schedule: 'cosine' })).toBeCloseTo(5e-4, 15);
    expect(learningRateAt(9, { ...base, schedule: 'cosine' })).toBeCloseTo(1e-3, 15);
  });

  it('decays by a half cosine after warm-up', () => {
    // s = 60: p = (60 − 10) / 100 = 0.5 → ½(1 + cos π/2) = 0.5
    expect(learningRateAt(60, { ...base, schedule: 'cosine' })).toBeCloseTo(5e-4, 15);
    // s = 35: p = 0.25 → ½(1 + cos π/4) = 0.853553…
    expect(learningRateAt(35, { ...base, schedule: 'cosine' })).toBeCloseTo(1e-3 * 0.8535533905932737, 15);
    expect(learningRateAt(110, { ...base, schedule: 'cosine' })).toBeCloseTo(0, 15);
  });

  it('linear decay (slanted triangular) and a floor', () => {
    // p = 0.25 → 1 − p = 0.75; with r = 0.1: 0.1 + 0.9 · 0.75 = 0.775
    expect(learningRateAt(35, { ...base, schedule: 'linear' })).toBeCloseTo(7.5e-4, 15);
    expect(learningRateAt(35, { ...base, schedule: 'linear', minLrRatio: 0.1 })).toBeCloseTo(7.75e-4, 15);
    expect(learningRateAt(500, { ...base, schedule: 'linear', minLrRatio: 0.1 })).toBeCloseTo(1e-4, 15);
  });

  it('constant after warm-up; no warm-up starts at the peak', () => {
    expect(learningRateAt(80, { ...base, schedule: 'constant' })).toBe(1e-3);
    expect(learningRateAt(0, { ...base, warmupSteps: 0, schedule: 'cosine' })).toBe(1e-3);
  });
});
