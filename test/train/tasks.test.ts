/**
 * Every task through `kiln train` on its tiny config and the real data root: the run
 * directory and model kind, `kiln eval --run`, and the machinery the loop gives every task:
 * resume after `kill -9` to the same result, the NaN guard, bf16 with gradient accumulation
 * and an explicit thread count.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { kiln, killAfterCheckpoint, onlyRun } from '../helpers/cli.js';

const TIMEOUT_MS = 300_000;
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
interface Summary {
  task: string;
  status: string;
  steps: number;
  wallSeconds: number;
  metrics: Record<string, number>;
  bm25?: Record<string, number>;
}

const TASKS = [
  { task: 'mlm', config: 'configs/tiny-mlm.yaml', kind: 'masked-lm', metrics: ['heldout/mlm_accuracy', 'heldout/mlm_loss'] },
  { task: 'cross-encoder', config: 'configs/tiny-cross-encoder.yaml', kind: 'cross-encoder', metrics: ['stsb/spearman', 'tech/first_stage/mrr', 'tech/first_stage/rp@5', 'tech/mrr', 'tech/rp@5'] },
  { task: 'twotower', config: 'configs/tiny.yaml', kind: 'two-tower', metrics: null },
] as const;

// A longer run for the resume test: checkpoints every 20 steps, no evaluation until the end.
const LONG = ['--set', 'train.steps=120', '--set', 'train.checkpoint_every=20', '--set', 'train.eval_every=0', '--set', 'train.log_every=20', '--quiet'];

describe.each(TASKS)('task $task ($config)', ({ task, config, kind, metrics }) => {
  if (task !== 'twotower') {
    it('trains end to end: model.json of its kind, the summary, and kiln eval --run', () => {
      const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
      const r = kiln(['train', '--config', config, '--runs', runs, '--quiet']);
      expect(r.status, r.stderr).toBe(0);
      const run = onlyRun(runs);
      expect(readJson<{ kind: string }>(join(run, 'model.json')).kind).toBe(kind);
      const summary = readJson<Summary>(join(run, 'summary.json'));
      expect(summary.task).toBe(task);
      expect(summary.status).toBe('completed');
      expect(summary.wallSeconds).toBeGreaterThan(0);
      expect(Object.keys(summary.metrics).sort()).toEqual([...metrics!]);
      for (const [k, v] of Object.entries(summary.metrics)) expect(Number.isFinite(v), k).toBe(true);
      const e = kiln(['eval', '--run', run, '--json']);
      if (task === 'mlm') {
        // A masked LM is not a retrieval model: kiln eval says so and exits 2.
        expect(e.status).toBe(2);
        expect(e.stderr).toMatch(/masked-lm run .*held-out metrics are in summary\.json/);
      } else {
        // The cross-encoder's re-ranking metrics are reproduced from the saved weights.
        expect(e.status, e.stderr).toBe(0);
        const evaluated = JSON.parse(e.stdout) as { metrics: Record<string, number> };
        for (const [k, v] of Object.entries(summary.metrics)) expect(evaluated.metrics[k], k).toBeCloseTo(v, 5);
        expect(Object.keys(summary.bm25 ?? {}).sort()).toEqual(metrics!.filter((k) => !k.includes('/first_stage/')));
        // The first stage is BM25 here, so its column is BM25's numbers on the same queries.
        expect(summary.metrics['tech/first_stage/mrr']).toBeCloseTo(summary.bm25!['tech/mrr']!, 6);
      }
    }, TIMEOUT_MS);
  }

  // The two-tower task's resume is tested in cli-train.test.ts.
  if (task !== 'twotower') {
    it('a run killed with -9 resumes to the same metrics as an uninterrupted one', async () => {
      const straightRoot = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
      const straight = kiln(['train', '--config', config, '--runs', straightRoot, ...LONG]);
      expect(straight.status, straight.stderr).toBe(0);
      const expected = readJson<Summary>(join(onlyRun(straightRoot), 'summary.json'));

      const run = await killAfterCheckpoint(mkdtempSync(join(tmpdir(), 'kiln-runs-')), ['--config', config, ...LONG], 40);
      expect(existsSync(join(run, 'summary.json'))).toBe(false);
      const resumed = kiln(['train', '--resume', run, '--quiet']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resuming at step \d+ of 120/);
      const summary = readJson<Summary>(join(run, 'summary.json'));
      expect(summary.status).toBe('completed');
      expect(summary.metrics).toEqual(expected.metrics);
    }, TIMEOUT_MS);
  }

  it('stops on a non-finite loss before the optimizer touches the weights (exit 1, status diverged)', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    // Weights drawn with a standard deviation of 1e30 overflow float32 in the first forward.
    const r = kiln(['train', '--config', config, '--runs', runs, '--quiet', '--set', 'model.init_std=1e30', '--set', 'data.eval=[]']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/training stopped: (loss|gradient norm) is (NaN|-?Infinity) at step 0.*no checkpoint was written yet/);
    const summary = readJson<Summary>(join(onlyRun(runs), 'summary.json'));
    expect(summary.status).toBe('diverged');
  }, TIMEOUT_MS);

  it('trains in bf16 with gradient accumulation on an explicit thread count', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const r = kiln(['train', '--config', config, '--runs', runs, '--quiet', '--set', 'train.precision=bf16', '--set', 'train.grad_accum=2', '--set', 'train.threads=2', '--set', 'train.steps=4', '--set', 'train.warmup_steps=1', '--set', 'train.eval_every=0', '--set', 'train.log_every=1', '--set', 'data.eval=[]']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/bf16, 2 thread\(s\)/);
    const run = onlyRun(runs);
    const losses = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; name: string; value: number }).filter((m) => m.name === 'train/loss');
    expect(losses.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    for (const m of losses) expect(Number.isFinite(m.value)).toBe(true);
    expect(readJson<Summary>(join(run, 'summary.json')).status).toBe('completed');
  }, TIMEOUT_MS);
});

describe('tasks that start from other runs', () => {
  it('a two-tower model starts from an MLM run (init_from), and a cross-encoder mines, re-ranks and fuses with a two-tower run', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const quick = ['--quiet', '--set', 'train.steps=4', '--set', 'train.warmup_steps=1', '--set', 'train.eval_every=0'];
    const mlm = kiln(['train', '--config', 'configs/tiny-mlm.yaml', '--runs', join(runs, 'mlm'), ...quick]);
    expect(mlm.status, mlm.stderr).toBe(0);
    // runs/<name> names the newest completed run of that name.
    const tower = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', join(runs, 'tower'), ...quick, '--set', `model.init_from=${join(runs, 'mlm', 'tiny-mlm')}`, '--set', 'data.eval=[]']);
    expect(tower.status, tower.stderr).toBe(0);
    expect(tower.stderr).toMatch(/init_from .*tiny-mlm-\d{8}-\d{6} \(kiln-run\): loaded 37 tensors; new: none; skipped: cls\.predictions\.bias, cls\.predictions\.transform\.dense\.weight/);
    const towerRun = onlyRun(join(runs, 'tower'));
    // The encoder kept the MLM run's sizes (64 wide, 2 layers) and vocabulary.
    const towerJson = readJson<{ encoder: { hiddenSize: number; vocabSize: number }; initFrom: object }>(join(towerRun, 'model.json'));
    expect(towerJson.encoder).toMatchObject({ hiddenSize: 64, vocabSize: 30522 });
    // model.json records the start: an MLM run, which never read a text pair.
    expect(towerJson.initFrom).toEqual({ path: onlyRun(join(runs, 'mlm')), kind: 'kiln-run', trainedSecondSegment: false });

    // The mining run's scores of the same pairs are soft labels beside the hard ones (similarity_kl).
    const softLabels = ['--set', 'loss=[{name: infonce, temperature: 1}, {name: similarity_kl, student_temperature: 1, teacher_temperature: 0.05}]', '--set', 'train.log_every=1'];
    const ce = kiln(['train', '--config', 'configs/tiny-cross-encoder.yaml', '--runs', join(runs, 'ce'), ...quick, ...softLabels, '--set', `cross_encoder.negatives.source=run:${towerRun}`, '--set', `cross_encoder.rerank.first_stage=run:${towerRun}`, '--set', 'cross_encoder.rerank.fusion={weight: 0.5}']);
    expect(ce.status, ce.stderr).toBe(0);
    const klValues = readFileSync(join(onlyRun(join(runs, 'ce')), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; value: number }).filter((m) => m.name === 'train/loss_similarity_kl');
    expect(klValues).toHaveLength(4);
    for (const m of klValues) expect(m.value).toBeGreaterThan(0);
    expect(ce.stderr).toMatch(/negatives per positive from the two-tower run .*tiny-\d{8}-\d{6} over \d+ training documents/);
    const summary = readJson<Summary & { firstStage: string }>(join(onlyRun(join(runs, 'ce')), 'summary.json'));
    expect(summary.firstStage).toBe(`run:${towerRun}`);
    // fusion adds the re-ranker fused with its retriever beside the two.
    expect(Object.keys(summary.metrics).sort()).toEqual(['stsb/spearman', 'tech/first_stage/mrr', 'tech/first_stage/rp@5', 'tech/fused/mrr', 'tech/fused/rp@5', 'tech/mrr', 'tech/rp@5']);
    expect(readFileSync(join(onlyRun(join(runs, 'ce')), 'train.log'), 'utf8')).toMatch(/first_stage +fused +bm25/);

    // A residual cross-encoder corrects the tower's scores (run/τ + its logit). A scored-pair
    // split (STS-B) has no first-stage score to correct: exit 2, and no run is written.
    const residual = ['--set', 'cross_encoder.residual={temperature: 0.05}', '--set', `cross_encoder.negatives.source=run:${towerRun}`, '--set', `cross_encoder.rerank.first_stage=run:${towerRun}`];
    const withSts = kiln(['train', '--config', 'configs/tiny-cross-encoder.yaml', '--runs', join(runs, 'residual-sts'), ...quick, ...residual]);
    expect(withSts.status).toBe(2);
    expect(withSts.stderr).toMatch(/data\.eval stsb: a residual cross-encoder re-ranks a first stage's candidates, and a scored-pair split has none/);
    expect(existsSync(join(runs, 'residual-sts')) ? readdirSync(join(runs, 'residual-sts')) : []).toEqual([]);
    // Its classifier starts at zero: after one step at a vanishing learning rate it re-ranks exactly as the tower.
    const techOnly = 'data.eval=[{name: tech, recipe: skill-extraction, options: {subset: tech, split: validation}, metrics: [rp@5, mrr], max_queries: 20}]';
    const still = ['--quiet', '--set', 'train.steps=1', '--set', 'train.warmup_steps=0', '--set', 'train.lr=1e-12', '--set', techOnly];
    const r = kiln(['train', '--config', 'configs/tiny-cross-encoder.yaml', '--runs', join(runs, 'residual'), ...still, ...residual]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/a residual over that run's scores: run\/0\.05 \+ cross-encoder/);
    const residualRun = onlyRun(join(runs, 'residual'));
    expect(readJson<{ residual: object }>(join(residualRun, 'model.json')).residual).toEqual({ run: resolve(towerRun), temperature: 0.05 });
    const metrics = readJson<Summary>(join(residualRun, 'summary.json')).metrics;
    expect(metrics['tech/first_stage/mrr']).toBeGreaterThan(0);
    expect(metrics['tech/mrr']).toBeCloseTo(metrics['tech/first_stage/mrr']!, 10);
    expect(metrics['tech/rp@5']).toBeCloseTo(metrics['tech/first_stage/rp@5']!, 10);
    // Its logit alone is no relevance score, so it neither exports nor teaches.
    const exported = kiln(['export', '--run', residualRun, '--out', join(runs, 'residual-export')]);
    expect(exported.status).toBe(2);
    expect(exported.stderr).toMatch(/a residual cross-encoder \(cross_encoder\.residual\) scores a correction to .*tiny-\d{8}-\d{6}'s scores/);
    expect(existsSync(join(runs, 'residual-export'))).toBe(false);
    const distill = kiln(['train', '--config', 'configs/tiny-distill-cross-encoder.yaml', '--runs', join(runs, 'residual-student'), '--quiet', '--set', `distill.teacher=${residualRun}`]);
    expect(distill.status).toBe(2);
    expect(distill.stderr).toMatch(/distill\.teacher: .* is a residual cross-encoder/);
  }, TIMEOUT_MS);
});
