/**
 * The quality gate: a run's metrics against a committed baseline (`quality/<name>.json`), each
 * metric with a direction and a tolerance.
 *
 *   higher is better:  regressed ⇔ value < baseline − tolerance
 *   lower is better:   regressed ⇔ value > baseline + tolerance
 *
 * A tolerance is not a guess: `calibrate` sets it from runs of the same config under different
 * seeds, tolerance = max(factor · (max − min), floor). The range of three draws of a normal
 * variable is ≈ 1.69σ on average, so the default factor 2.5 puts the threshold ≈ 4σ from the
 * mean, and a single run differs from the mean of three by σ·√(4/3): a drop of noise alone
 * crosses it with probability ≈ 1e-4 per metric. The tolerance is also the smallest drop
 * the gate can catch, so the baseline file states both.
 *
 * Where the metrics come from (`readGateMetrics`): a run directory (summary.json, a finished
 * run only) or an export directory (model.json, the exported model's evaluation from
 * `kiln export --eval`): the gate can check the model that is served, not only the eager one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

import { writeFileAtomic } from '../util/atomic-write.js';

export const GATE_SCHEMA = 'kiln.quality-baseline/1';

const metricSchema = z
  .object({
    value: z.number().finite().describe('The baseline value (the mean of the calibration runs)'),
    direction: z.enum(['higher', 'lower']).describe('Which way is better'),
    tolerance: z.number().finite().min(0).describe('How far the value may move the wrong way before the gate fails; also the smallest drop it catches'),
    spread: z.number().finite().min(0).optional().describe('max − min over the calibration runs'),
  })
  .strict();

export const baselineSchema = z
  .object({
    schema: z.literal(GATE_SCHEMA),
    description: z.string().optional(),
    /** Which metrics: a run's summary.json, or its ONNX export's evaluation. */
    source: z.enum(['run', 'export']),
    /** How the tolerances were set: the runs, their seeds, the factor and floor. */
    calibration: z
      .object({
        runs: z.array(z.string()),
        factor: z.number().positive(),
        floor: z.number().min(0),
        note: z.string().optional(),
      })
      .strict()
      .optional(),
    metrics: z.record(z.string(), metricSchema).refine((m) => Object.keys(m).length > 0, { message: 'a baseline needs at least one metric' }),
  })
  .strict();

export type Baseline = z.infer<typeof baselineSchema>;
export type BaselineMetric = z.infer<typeof metricSchema>;

/** A user error in the gate's inputs (a missing metric, a malformed baseline): exit 2, never a pass. */
export class GateError extends Error {}

export interface GateMetrics {
  source: 'run' | 'export';
  /** The directory read, for messages. */
  path: string;
  metrics: Record<string, number>;
}

/** The metrics of a finished run directory or of an export directory evaluated by `kiln export --eval`. */
export function readGateMetrics(dir: string): GateMetrics {
  const summaryPath = join(dir, 'summary.json');
  const cardPath = join(dir, 'model.json');
  if (existsSync(summaryPath)) {
    const summary = readJson(summaryPath) as { status?: unknown; metrics?: unknown };
    if (summary.status !== 'completed' && summary.status !== 'early-stopped') {
      throw new GateError(`${summaryPath}: status is ${JSON.stringify(summary.status)}; expected a completed run (a diverged or unfinished run has no metrics to gate)`);
    }
    return { source: 'run', path: dir, metrics: numericRecord(summary.metrics, `${summaryPath}: metrics`) };
  }
  if (existsSync(cardPath)) {
    const card = readJson(cardPath) as { format?: unknown; checks?: { evaluation?: { exported?: unknown } } };
    if (card.format !== 'kiln-onnx') throw new GateError(`${cardPath}: not a Kiln export (format ${JSON.stringify(card.format)}); expected a run directory or a directory written by kiln export`);
    const exported = card.checks?.evaluation?.exported;
    if (exported === undefined) throw new GateError(`${cardPath}: the export has no evaluation; export with \`kiln export --eval\` so the exported model's metrics are recorded`);
    return { source: 'export', path: dir, metrics: numericRecord(exported, `${cardPath}: checks.evaluation.exported`) };
  }
  throw new GateError(`${dir}: neither summary.json (a run) nor model.json (an export) is there; expected runs/<id> or an export directory`);
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new GateError(`${path}: ${(error as Error).message}`);
  }
}

function numericRecord(value: unknown, where: string): Record<string, number> {
  if (typeof value !== 'object' || value === null) throw new GateError(`${where}: expected an object of metric values`);
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1])));
}

/** Reads and validates a baseline file; every problem names the file and the key. */
export function readBaseline(path: string): Baseline {
  if (!existsSync(path)) throw new GateError(`${path}: no such baseline; create one with \`kiln gate --update --run <dir> [--run <dir> ...] --baseline ${path}\``);
  const parsed = baselineSchema.safeParse(readJson(path));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new GateError(`${path}: not a quality baseline of schema ${GATE_SCHEMA}:\n${problems.join('\n')}`);
  }
  return parsed.data;
}

export type GateStatus = 'regressed' | 'improved' | 'within tolerance';

export interface GateRow {
  metric: string;
  baseline: number;
  value: number;
  /** value − baseline, signed so that positive is better. */
  gain: number;
  tolerance: number;
  status: GateStatus;
}

export interface GateResult {
  rows: GateRow[];
  regressions: GateRow[];
  passed: boolean;
}

/** Compares `metrics` with every metric of the baseline; one the run lacks is an error, not a pass. */
export function runGate(baseline: Baseline, metrics: GateMetrics, baselinePath: string): GateResult {
  if (metrics.source !== baseline.source) {
    throw new GateError(
      `${baselinePath}: source is "${baseline.source}" but ${metrics.path} is ${metrics.source === 'run' ? 'a run' : 'an export'}; gate ${baseline.source === 'export' ? 'the export directory (kiln export --eval)' : 'the run directory'}`,
    );
  }
  const missing = Object.keys(baseline.metrics).filter((name) => metrics.metrics[name] === undefined);
  if (missing.length > 0) throw new GateError(`${metrics.path}: no value for ${missing.join(', ')}, which ${baselinePath} gates; a missing metric is not a pass`);
  const rows = Object.entries(baseline.metrics).map(([metric, spec]): GateRow => {
    const value = metrics.metrics[metric]!;
    const gain = spec.direction === 'higher' ? value - spec.value : spec.value - value;
    // The slack absorbs float rounding (0.29 − 0.3 is −0.01000…009), so a drop of exactly the tolerance passes.
    const slack = 1e-9 * Math.max(1, Math.abs(spec.value));
    const status: GateStatus = gain < -spec.tolerance - slack ? 'regressed' : gain > spec.tolerance + slack ? 'improved' : 'within tolerance';
    return { metric, baseline: spec.value, value, gain, tolerance: spec.tolerance, status };
  });
  const regressions = rows.filter((r) => r.status === 'regressed');
  return { rows, regressions, passed: regressions.length === 0 };
}

/** Default direction by name: losses and errors fall, everything else (recall, MRR, AUC, accuracy) rises. */
export function defaultDirection(metric: string): 'higher' | 'lower' {
  return /(loss|error|perplexity|ece)$/.test(metric) ? 'lower' : 'higher';
}

export interface CalibrateOptions {
  factor: number;
  floor: number;
  source: 'run' | 'export';
  /** Metrics to gate; default: those of `previous`, else every metric all runs share. */
  previous?: Baseline;
  description?: string;
}

/**
 * A baseline from one or more runs of the same config: value = their mean, spread = max − min,
 * tolerance = max(factor · spread, floor). With one run the spread is unknown: the previous
 * baseline's tolerance is kept (a deliberate re-baseline after an accepted change).
 */
export function calibrate(runs: readonly GateMetrics[], options: CalibrateOptions): Baseline {
  if (runs.length === 0) throw new GateError('--update needs at least one --run');
  const names = options.previous !== undefined ? Object.keys(options.previous.metrics) : Object.keys(runs[0]!.metrics).filter((m) => runs.every((r) => r.metrics[m] !== undefined));
  const metrics: Record<string, BaselineMetric> = {};
  for (const name of names) {
    const values = runs.map((r) => {
      const v = r.metrics[name];
      if (v === undefined) throw new GateError(`${r.path}: no value for ${name}; every run given to --update must have every gated metric`);
      return v;
    });
    const value = values.reduce((a, b) => a + b, 0) / values.length;
    const spread = Math.max(...values) - Math.min(...values);
    const before = options.previous?.metrics[name];
    const tolerance = runs.length > 1 ? Math.max(options.factor * spread, options.floor) : (before?.tolerance ?? options.floor);
    metrics[name] = { value, direction: before?.direction ?? defaultDirection(name), tolerance, ...(runs.length > 1 ? { spread } : before?.spread !== undefined ? { spread: before.spread } : {}) };
  }
  const calibration = runs.length > 1 ? { runs: runs.map((r) => r.path), factor: options.factor, floor: options.floor } : options.previous?.calibration;
  return {
    schema: GATE_SCHEMA,
    ...(options.description !== undefined ? { description: options.description } : options.previous?.description !== undefined ? { description: options.previous.description } : {}),
    source: options.source,
    ...(calibration !== undefined ? { calibration } : {}),
    metrics,
  };
}

export function writeBaseline(path: string, baseline: Baseline): void {
  writeFileAtomic(path, [Buffer.from(`${JSON.stringify(baseline, null, 2)}\n`, 'utf8')]);
}

/** Percent points for metrics in [0, 1], raw numbers otherwise. */
export function formatMetricValue(value: number): string {
  return Math.abs(value) <= 1 ? (value * 100).toFixed(2) : value.toFixed(4);
}
