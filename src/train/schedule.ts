/**
 * The learning-rate schedule, a pure function of the step (so a resumed run needs no state):
 *
 *   warm-up   (s < W):  lr · (s + 1) / W
 *   decay     (s ≥ W):  p = (s − W) / max(1, T − W)
 *     cosine:    lr · (r + (1 − r) · ½(1 + cos πp))      (Loshchilov & Hutter 2017, SGDR, arXiv 1608.03983)
 *     linear:    lr · (r + (1 − r) · (1 − p))           (warm-up + linear decay = the slanted triangular
 *                                                         schedule of Howard & Ruder 2018, ULMFiT, arXiv 1801.06146)
 *     constant:  lr
 *
 * s is the 0-based optimizer step, T the total steps, W the warm-up steps, r = min_lr_ratio.
 */
export interface ScheduleOptions {
  lr: number;
  totalSteps: number;
  warmupSteps: number;
  schedule: 'cosine' | 'linear' | 'constant';
  minLrRatio: number;
}

export function learningRateAt(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === 'constant') return o.lr;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  const shape = o.schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * shape);
}
