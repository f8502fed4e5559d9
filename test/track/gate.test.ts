/**
 * The quality gate (src/track/gate.ts, `kiln gate`): hand-computed comparisons and calibration,
 * every error that must not pass, and end to end on real exports: a model trained for one step
 * fails the gate of the same config trained for twenty.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { calibrate, GATE_SCHEMA, GateError, readBaseline, readGateMetrics, runGate, type Baseline, type GateMetrics } from '../../src/track/gate.js';
import { kiln, onlyRun } from '../helpers/cli.js';

const baseline: Baseline = {
  schema: GATE_SCHEMA,
  source: 'run',
  metrics: {
    'jobbert/mrr': { value: 0.3, direction: 'higher', tolerance: 0.01 },
    'tech/rp@5': { value: 0.5, direction: 'higher', tolerance: 0.02 },
    'heldout/mlm_loss': { value: 2.0, direction: 'lower', tolerance: 0.1 },
  },
};
const run = (metrics: Record<string, number>, source: 'run' | 'export' = 'run'): GateMetrics => ({ source, path: '/runs/x', metrics });

describe('runGate', () => {
  it('flags a move the wrong way beyond the tolerance, in either direction of "better"', () => {
    const result = runGate(baseline, run({ 'jobbert/mrr': 0.285, 'tech/rp@5': 0.49, 'heldout/mlm_loss': 2.2, extra: 1 }), 'b.json');
    expect(result.passed).toBe(false);
    expect(result.regressions.map((r) => r.metric)).toEqual(['jobbert/mrr', 'heldout/mlm_loss']);
    const byName = Object.fromEntries(result.rows.map((r) => [r.metric, r]));
    expect(byName['jobbert/mrr']!.gain).toBeCloseTo(-0.015, 12); // 0.285 − 0.3, beyond 0.01
    expect(byName['tech/rp@5']).toMatchObject({ status: 'within tolerance' }); // −0.01, inside 0.02
    expect(byName['heldout/mlm_loss']!.gain).toBeCloseTo(-0.2, 12); // lower is better: 2.0 − 2.2
  });

  it('passes within tolerance and reports improvements; a drop of exactly the tolerance passes', () => {
    const result = runGate(baseline, run({ 'jobbert/mrr': 0.29, 'tech/rp@5': 0.6, 'heldout/mlm_loss': 1.5 }), 'b.json');
    expect(result.passed).toBe(true);
    expect(result.rows.map((r) => r.status)).toEqual(['within tolerance', 'improved', 'improved']);
  });

  it('a metric the run lacks is an error, not a pass; so is gating a run against an export baseline', () => {
    expect(() => runGate(baseline, run({ 'jobbert/mrr': 0.3, 'tech/rp@5': 0.5 }), 'b.json')).toThrow(/no value for heldout\/mlm_loss, which b.json gates; a missing metric is not a pass/);
    expect(() => runGate({ ...baseline, source: 'export' }, run({ 'jobbert/mrr': 1, 'tech/rp@5': 1, 'heldout/mlm_loss': 0 }), 'b.json')).toThrow(GateError);
  });
});

describe('calibrate', () => {
  it('mean value, spread = max − min, tolerance = max(factor · spread, floor)', () => {
    const runs = [run({ 'jobbert/mrr': 0.3, 'tech/rp@5': 0.5, loss: 1 }), run({ 'jobbert/mrr': 0.31, 'tech/rp@5': 0.5, loss: 1.2 }), run({ 'jobbert/mrr': 0.32, 'tech/rp@5': 0.5, loss: 1.1 })];
    const b = calibrate(runs, { factor: 2.5, floor: 0.002, source: 'run' });
    expect(b.metrics['jobbert/mrr']!.value).toBeCloseTo(0.31, 12);
    expect(b.metrics['jobbert/mrr']!.spread).toBeCloseTo(0.02, 12);
    expect(b.metrics['jobbert/mrr']!.tolerance).toBeCloseTo(0.05, 12); // 2.5 × 0.02
    expect(b.metrics['tech/rp@5']!.tolerance).toBe(0.002); // no spread: the floor
    expect(b.metrics['loss']).toMatchObject({ direction: 'lower' });
    expect(b.metrics['loss']!.tolerance).toBeCloseTo(0.5, 12); // 2.5 × 0.2
    expect(b.calibration).toEqual({ runs: ['/runs/x', '/runs/x', '/runs/x'], factor: 2.5, floor: 0.002 });
  });

  it('one run re-baselines the values and keeps the calibrated tolerances and metric set', () => {
    const b = calibrate([run({ 'jobbert/mrr': 0.4, 'tech/rp@5': 0.45, 'heldout/mlm_loss': 1.9, other: 3 })], { factor: 2.5, floor: 0.002, source: 'run', previous: baseline });
    expect(Object.keys(b.metrics)).toEqual(Object.keys(baseline.metrics));
    expect(b.metrics['jobbert/mrr']).toEqual({ value: 0.4, direction: 'higher', tolerance: 0.01 });
    expect(b.metrics['heldout/mlm_loss']).toEqual({ value: 1.9, direction: 'lower', tolerance: 0.1 });
  });
});

describe('baseline and metric files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-gate-'));

  it('a baseline of another schema or with a malformed metric names the file and the key', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ ...baseline, schema: 'kiln.quality-baseline/0' }));
    expect(() => readBaseline(path)).toThrow(new RegExp(`bad\\.json: not a quality baseline of schema ${GATE_SCHEMA.replace('/', '\\/')}:\\n  schema:`));
    writeFileSync(path, JSON.stringify({ ...baseline, metrics: { 'jobbert/mrr': { value: 0.3, direction: 'up', tolerance: 0.01 } } }));
    expect(() => readBaseline(path)).toThrow(/metrics\.jobbert\/mrr\.direction/);
    expect(() => readBaseline(join(dir, 'none.json'))).toThrow(/no such baseline; create one with `kiln gate --update/);
  });

  it('reads a finished run, refuses a diverged one, and needs an evaluated export', () => {
    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'summary.json'), JSON.stringify({ status: 'completed', metrics: { 'jobbert/mrr': 0.3, note: 'x' } }));
    expect(readGateMetrics(runDir)).toEqual({ source: 'run', path: runDir, metrics: { 'jobbert/mrr': 0.3 } });
    writeFileSync(join(runDir, 'summary.json'), JSON.stringify({ status: 'diverged', metrics: {} }));
    expect(() => readGateMetrics(runDir)).toThrow(/status is "diverged"; expected a completed run/);
    const exportDir = join(dir, 'export');
    mkdirSync(exportDir);
    writeFileSync(join(exportDir, 'model.json'), JSON.stringify({ format: 'kiln-onnx', checks: {} }));
    expect(() => readGateMetrics(exportDir)).toThrow(/the export has no evaluation; export with `kiln export --eval`/);
    expect(() => readGateMetrics(dir)).toThrow(/neither summary\.json \(a run\) nor model\.json \(an export\)/);
  });
});

describe('kiln gate on real exports (configs/tiny.yaml)', () => {
  it('a model trained for 1 step fails the gate of the 20-step model; --update prints the diff; errors exit 2', () => {
    const root = mkdtempSync(join(tmpdir(), 'kiln-gate-cli-'));
    const trainAndExport = (name: string, steps: number): string => {
      const runs = join(root, name);
      const t = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--quiet', '--set', `train.steps=${steps}`, '--set', 'train.warmup_steps=0', '--set', 'train.eval_every=0']);
      expect(t.status, t.stderr).toBe(0);
      const out = join(root, `${name}-onnx`);
      const e = kiln(['export', '--run', onlyRun(runs), '--out', out, '--eval']);
      expect(e.status, e.stderr).toBe(0);
      return out;
    };
    const good = trainAndExport('good', 20);
    const bad = trainAndExport('bad', 1);
    const file = join(root, 'quality', 'tiny.json');

    const created = kiln(['gate', '--update', '--run', good, '--baseline', file]);
    expect(created.status, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/created from 1 run\(s\)/);
    expect(created.stdout).toMatch(/jobbert\/mrr\s+-\s+\d+\.\d\d\s+new/);
    const written = JSON.parse(readFileSync(file, 'utf8')) as Baseline;
    expect(written.source).toBe('export');
    expect(written.metrics['jobbert/mrr']!.direction).toBe('higher');

    const pass = kiln(['gate', '--run', good, '--baseline', file]);
    expect(pass.status, pass.stdout + pass.stderr).toBe(0);
    expect(pass.stdout).toMatch(/jobbert\/mrr\s+\d+\.\d\d\s+\d+\.\d\d\s+\+0\.00\s+0\.20\s+within tolerance/);
    expect(pass.stdout).toMatch(/gate passed/);

    const fail = kiln(['gate', '--run', bad, '--baseline', file]);
    expect(fail.status, fail.stdout + fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(/jobbert\/mrr\s+\d+\.\d\d\s+\d+\.\d\d\s+−\d+\.\d\d\s+0\.20\s+REGRESSED/);
    expect(fail.stdout).toMatch(/gate FAILED: \d+ metric\(s\) regressed/);

    // --update from the worse model: the diff shows what moved, by how much.
    const update = kiln(['gate', '--update', '--run', bad, '--baseline', file]);
    expect(update.status).toBe(0);
    expect(update.stdout).toMatch(/updated from 1 run\(s\)/);
    expect(update.stdout).toMatch(/jobbert\/mrr\s+\d+\.\d\d\s+\d+\.\d\d\s+−\d+\.\d\d\s+0\.20\s+0\.20/);
    expect(kiln(['gate', '--run', bad, '--baseline', file]).status).toBe(0);

    // A metric the export lacks, and a baseline of another schema: exit 2, not a pass.
    const extra = JSON.parse(readFileSync(file, 'utf8')) as Baseline;
    extra.metrics['house/rp@5'] = { value: 0.2, direction: 'higher', tolerance: 0.01 };
    writeFileSync(file, JSON.stringify(extra));
    const missing = kiln(['gate', '--run', good, '--baseline', file]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no value for house\/rp@5/);
    writeFileSync(file, JSON.stringify({ ...extra, schema: 'other' }));
    expect(kiln(['gate', '--run', good, '--baseline', file]).status).toBe(2);
    expect(kiln(['gate', '--run', good, '--run', bad, '--baseline', file]).status).toBe(2); // several runs only with --update
  }, 300_000);
});
