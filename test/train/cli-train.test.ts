/**
 * `kiln train` and `kiln eval` end to end on configs/tiny.yaml and the real data root:
 * the run directory, reproducibility under a seed, resume after `kill -9`, bad configs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/python.js';
import { BIN, ENV, kiln, onlyRun, runDirs } from '../helpers/cli.js';
import { RunStore } from '../../src/track/store.js';


interface Summary {
  status: string;
  steps: number;
  metrics: Record<string, number>;
  bm25: Record<string, number>;
  tfidf_char: Record<string, number>;
}

const readSummary = (run: string): Summary => JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as Summary;

// These tests spawn whole trainings and evaluations (three of each for the resume test), each
// evaluating the full JobBERT split: minutes on a busy 2-core machine.
const TRAINING_TEST_TIMEOUT_MS = 300_000;

// A longer tiny run for the resume test: checkpoints every 20 steps, no evaluation until the end.
const LONG = ['--set', 'train.steps=160', '--set', 'train.checkpoint_every=20', '--set', 'train.eval_every=0', '--set', 'train.log_every=20', '--quiet'];

describe('kiln train (configs/tiny.yaml)', () => {
  it('trains end to end and writes a complete run directory', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const r = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const run = onlyRun(runs);
    for (const f of ['config.yaml', 'model.json', 'tokenizer.json', 'metrics.jsonl', 'model.safetensors', 'summary.json']) expect(existsSync(join(run, f)), f).toBe(true);
    const summary = readSummary(run);
    expect(summary.status).toBe('completed');
    const dense = ['jobbert/mrr', 'jobbert/recall@1', 'jobbert/recall@10', 'jobbert/recall@5', 'jobbert/roc_auc', 'stsb/spearman', 'tech/mrr', 'tech/rp@5'];
    // tiny.yaml fuses TECH with character TF-IDF: its hybrid metrics sit beside the model's.
    expect(Object.keys(summary.metrics).sort()).toEqual([...dense, 'tech/hybrid/mrr', 'tech/hybrid/rp@5'].sort());
    expect(Object.keys(summary.bm25).sort()).toEqual(dense);
    expect(Object.keys(summary.tfidf_char).sort()).toEqual(['tech/mrr', 'tech/rp@5']);
    // Trained beats untrained: the same config stopped after one step (measured: JobBERT MRR
    // 10.43 against 7.38, ROC-AUC 69.70 against 62.47, TECH RP@5 9.56 against 7.78).
    const untrainedRuns = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const u = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', untrainedRuns, '--quiet', '--set', 'train.steps=1', '--set', 'train.warmup_steps=0', '--set', 'train.eval_every=0']);
    expect(u.status, u.stderr).toBe(0);
    const untrained = readSummary(onlyRun(untrainedRuns)).metrics;
    expect(summary.metrics['jobbert/mrr']! - untrained['jobbert/mrr']!).toBeGreaterThan(0.02);
    expect(summary.metrics['jobbert/roc_auc']! - untrained['jobbert/roc_auc']!).toBeGreaterThan(0.04);
    expect(summary.metrics['tech/rp@5']!).toBeGreaterThan(untrained['tech/rp@5']!);
    // The summary table prints Kiln's numbers beside the hybrid's, BM25's and TF-IDF's.
    expect(r.stderr).toMatch(/metric\s+kiln\s+hybrid\s+bm25\s+tfidf_char/);
    expect(r.stderr).toMatch(/tech\/rp@5\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d/);
    expect(r.stderr).toMatch(/jobbert\/mrr\s+\d+\.\d\d\s+-\s+\d+\.\d\d\s+-/);
    // metrics.jsonl: {step, time, name, value}, train metrics every log_every steps, evals at 10 and 20.
    const records = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; time: number; name: string; value: number });
    expect(records.filter((m) => m.name === 'train/loss').map((m) => m.step)).toEqual([5, 10, 15, 20]);
    expect(records.filter((m) => m.name === 'eval/jobbert/mrr').map((m) => m.step)).toEqual([10, 20]);
    expect(records.filter((m) => m.name === 'eval/tech/hybrid/rp@5').map((m) => m.step)).toEqual([10, 20]);
    for (const m of records) expect(Number.isFinite(m.value) && m.time >= 0).toBe(true);
    // The resolved config is complete: it loads again and trains the same model.
    expect(readFileSync(join(run, 'config.yaml'), 'utf8')).toMatch(/batch_size: 16/);

    // `kiln eval --run` reproduces the final metrics from the saved weights, BM25 beside them.
    const e = kiln(['eval', '--run', run, '--baseline', 'bm25', '--json', '--save']);
    expect(e.status, e.stderr).toBe(0);
    const evaluated = JSON.parse(e.stdout) as { metrics: Record<string, number>; bm25: Record<string, number> };
    const saved = JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8')) as { metrics: Record<string, number>; bm25: Record<string, number> };
    expect(saved.metrics).toEqual(evaluated.metrics);
    expect(saved.bm25).toEqual(evaluated.bm25);
    for (const [k, v] of Object.entries(summary.metrics)) expect(evaluated.metrics[k], k).toBeCloseTo(v, 6);
    expect(evaluated.bm25).toEqual(summary.bm25);
    // The run store holds the training (params, series, results) and the evaluation made from it.
    const store = RunStore.open(runs);
    const stored = store.getRun(basename(run));
    expect(stored).toMatchObject({ status: 'finished', kind: 'train', task: 'twotower', name: 'tiny', path: run });
    expect(stored.results).toEqual(summary.metrics);
    expect(stored.params['train.batch_size']).toBe('16');
    expect(stored.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining(['config.yaml', 'metrics.jsonl', 'model.safetensors', 'summary.json']));
    expect(store.metricSeries(stored.id, 'train/loss').map((p) => p.value)).toEqual(records.filter((m) => m.name === 'train/loss').map((m) => m.value));
    expect(stored.children).toHaveLength(1);
    const evaluation = store.getRun(stored.children[0]!.id);
    expect(evaluation).toMatchObject({ kind: 'eval', status: 'finished', parentId: stored.id });
    expect(evaluation.results).toEqual({ ...evaluated.metrics, ...Object.fromEntries(Object.entries(evaluated.bm25).map(([k, v]) => [`bm25/${k}`, v])) });
    store.close();
    // --split narrows to named splits; an unknown name is an error that lists the known ones.
    const tech = kiln(['eval', '--run', run, '--split', 'tech', '--json']);
    expect(tech.status, tech.stderr).toBe(0);
    expect(Object.keys((JSON.parse(tech.stdout) as { metrics: object }).metrics).sort()).toEqual(['tech/hybrid/mrr', 'tech/hybrid/rp@5', 'tech/mrr', 'tech/rp@5']);
    // --hybrid: the model, both lexical rankers and the hybrid, and a weight chosen on the split.
    const h = kiln(['eval', '--run', run, '--split', 'tech', '--hybrid', '--json']);
    expect(h.status, h.stderr).toBe(0);
    const [report] = (JSON.parse(h.stdout) as { hybrid: Array<{ split: string; dense: Record<string, number>; lexical: Record<string, Record<string, number>>; hybrid: Record<string, number>; tuned: { weight: number; metrics: Record<string, number> } }> }).hybrid;
    expect(report!.split).toBe('tech');
    expect(report!.hybrid['rp@5']).toBeCloseTo(summary.metrics['tech/hybrid/rp@5']!, 6);
    expect(report!.lexical['tfidf_char']!['rp@5']).toBeCloseTo(summary.tfidf_char['tech/rp@5']!, 6);
    expect(report!.lexical['bm25']!['rp@5']).toBeCloseTo(summary.bm25['tech/rp@5']!, 6);
    // The grid holds w = 1 (the model's own top 100, in its order) and the configured 0.5.
    expect(report!.tuned.metrics['rp@5']!).toBeGreaterThanOrEqual(Math.max(report!.dense['rp@5']!, report!.hybrid['rp@5']!));
    expect(kiln(['eval', '--config', 'configs/tiny.yaml', '--baseline', 'bm25', '--hybrid']).status).toBe(2);
    const unknown = kiln(['eval', '--run', run, '--split', 'nope']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--split nope: not in data\.eval \(jobbert, tech, stsb\)/);
    // A user error leaves no record in the store; the three evaluations that ran do.
    const after = RunStore.open(runs);
    expect(after.getRun(basename(run)).children.map((c) => c.status)).toEqual(['finished', 'finished', 'finished']);
    after.close();
  }, TRAINING_TEST_TIMEOUT_MS);

  it('the same seed and config give the same metrics; a run killed with -9 resumes to the same result', async () => {
    const straightRoot = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const straight = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', straightRoot, ...LONG]);
    expect(straight.status, straight.stderr).toBe(0);
    const expected = readSummary(onlyRun(straightRoot));

    const killedRoot = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const child = spawn(process.execPath, [BIN, 'train', '--config', 'configs/tiny.yaml', '--runs', killedRoot, ...LONG], { cwd: REPO_ROOT, env: ENV, stdio: 'ignore' });
    const killedAt = await new Promise<number>((resolvePromise, reject) => {
      const timer = setInterval(() => {
        const runs = runDirs(killedRoot);
        const latest = runs.length === 1 ? join(killedRoot, runs[0]!, 'checkpoints', 'latest') : null;
        if (latest !== null && existsSync(latest)) {
          const step = Number(/step-(\d+)/.exec(readFileSync(latest, 'utf8'))?.[1]);
          if (step >= 40) {
            child.kill('SIGKILL');
            clearInterval(timer);
            resolvePromise(step);
          }
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('the run finished before it could be killed'));
      });
    });
    await new Promise((r) => child.on('exit', r));
    expect(killedAt).toBeLessThan(160);
    const run = onlyRun(killedRoot);
    expect(existsSync(join(run, 'summary.json'))).toBe(false);
    // The run store notices the dead process on its next read.
    const killedStore = RunStore.open(killedRoot);
    expect(killedStore.getRun(basename(run))).toMatchObject({ status: 'killed', message: expect.stringMatching(/^process \d+ ended without finishing the run$/) });
    killedStore.close();

    const resumed = kiln(['train', '--resume', run, '--quiet']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at step \d+ of 160/);
    const summary = readSummary(run);
    expect(summary.status).toBe('completed');
    expect(summary.metrics).toEqual(expected.metrics);
    // No duplicated or torn metric lines after the resume.
    const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; name: string }).filter((m) => m.name === 'train/loss').map((m) => m.step);
    expect(steps).toEqual([20, 40, 60, 80, 100, 120, 140, 160]);
    // The store holds the resumed run as finished, with the same series and results as the files.
    const store = RunStore.open(killedRoot);
    const stored = store.getRun(basename(run));
    expect(stored.status).toBe('finished');
    expect(stored.tags['kiln.resumed']).toBe('true');
    expect(stored.results).toEqual(summary.metrics);
    expect(store.metricSeries(stored.id, 'train/loss').map((p) => p.step)).toEqual([20, 40, 60, 80, 100, 120, 140, 160]);
    store.close();

    // A finished run is not resumed again: exit 2, and its summary is left as it was.
    const summaryBytes = readFileSync(join(run, 'summary.json'), 'utf8');
    const again = kiln(['train', '--resume', run, '--quiet']);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/the run finished \(summary\.json is written\), so there is nothing to resume/);
    expect(again.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(run, 'summary.json'), 'utf8')).toBe(summaryBytes);
  }, TRAINING_TEST_TIMEOUT_MS);

  it('a bad config exits 2, names each problem with its line, and writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-bad-'));
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, readFileSync(join(REPO_ROOT, 'configs', 'tiny.yaml'), 'utf8').replace('lr: 1.0e-3', 'lr: -1').replace('batch_size: 16', 'batch_sise: 16'));
    const runs = join(dir, 'runs');
    const r = kiln(['train', '--config', config, '--runs', runs]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: train\.lr: expected a number > 0.*got -1/);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: train\.batch_sise: unknown key 'batch_sise' \(did you mean 'batch_size'\?\)/);
    expect(existsSync(runs)).toBe(false);
    // An override is checked the same way.
    const o = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--set', 'train.precision=fp16']);
    expect(o.status).toBe(2);
    expect(o.stderr).toMatch(/train\.precision/);
    expect(existsSync(runs)).toBe(false);
    // No data root: one line saying how to give it, exit 2, no stack trace.
    const noRoot = spawnSync(process.execPath, [BIN, 'train', '--config', 'configs/tiny.yaml', '--runs', runs], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, KILN_DATA: '' } });
    expect(noRoot.status).toBe(2);
    expect(noRoot.stderr.trim()).toBe('data error: --data-root: no data root: pass --data-root DIR or set KILN_DATA=DIR (the folder holding esco-v1.1.1/, onet-29.2/, …; see datasets/README.md for the layout and download pages)');
    expect(existsSync(runs)).toBe(false);
  });
});
