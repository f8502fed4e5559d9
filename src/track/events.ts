/**
 * What a training run reports while it runs: the loop (src/train/loop.ts) emits these events,
 * and observers (the run directory, progress output, later the SQLite run store) subscribe
 * through `TrainHooks`. They live here, below the loop, because the observers are the ones
 * that read them.
 */

export interface StepEvent {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  logs: Record<string, number>;
  examples: number;
  tokens: number;
  stepSeconds: number;
}

export interface EvalEvent {
  step: number;
  metrics: Record<string, number>;
  seconds: number;
  improved: boolean;
}

export interface EndEvent {
  status: 'completed' | 'early-stopped' | 'diverged';
  lastStep: number;
  bestStep: number | null;
  bestValue: number | null;
  message: string;
  /** Seconds the loop ran, across resumes. */
  elapsedSeconds: number;
}

/** Observers of the loop: the run directory, progress output, later the SQLite run store. */
export interface TrainHooks {
  onStart?(event: { startStep: number; totalSteps: number; resumed: boolean }): void;
  onStep?(event: StepEvent): void;
  onEval?(event: EvalEvent): void;
  onCheckpoint?(event: { step: number; path: string }): void;
  onEnd?(event: EndEvent): void;
}

