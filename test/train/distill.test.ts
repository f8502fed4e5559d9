/**
 * `task: distill` end to end on tiny configs and the real data root: a bi-encoder teacher and a
 * cross-encoder teacher, the report (parameter counts, retention and gap bridged, checked by
 * hand against the runs' own summaries), the teacher cache written and reused by a second
 * student, resume after `kill -9`, and bad configs.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT, runPython } from '../helpers/python.js';
import { kiln, killAfterCheckpoint, onlyRun, runDirs } from '../helpers/cli.js';
import { distillationReport, layerPairs } from '../../src/train/tasks/distill.js';
import { loadSafetensors } from '../../src/engine/index.js';

const TIMEOUT_MS = 300_000;
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

interface Distillation {
  teacher: { path: string; kind: string; parameters: number; metrics: Record<string, number> };
  student: { parameters: number };
  reduction: number;
  baseline: { path: string; metrics: Record<string, number> } | null;
  retention: Record<string, number>;
  gapBridged: Record<string, number>;
  teacherCache: { entries: number; hits: number; misses: number; reused: number };
}
interface Summary {
  task: string;
  status: string;
  parameters: number;
  metrics: Record<string, number>;
  distillation: Distillation;
}

const QUICK = ['--quiet', '--set', 'train.eval_every=0'];

function train(runsRoot: string, config: string, extra: string[] = []): string {
  const r = kiln(['train', '--config', config, '--runs', runsRoot, ...QUICK, ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return onlyRun(runsRoot);
}

describe('layer map and report', () => {
  it('maps layers uniformly (TinyBERT): embeddings to embeddings, student layer i to teacher layer i·Lt/Ls', () => {
    expect(layerPairs('uniform', 2, 4)).toEqual([[0, 0], [1, 2], [2, 4]]);
    expect(layerPairs('uniform', 1, 2)).toEqual([[0, 0], [1, 2]]);
    expect(layerPairs([[1, 3]], 2, 4)).toEqual([[1, 3]]);
    expect(() => layerPairs([[3, 1]], 2, 4)).toThrow(/distill\.layer_map\[0\]: student layer 3 does not exist; the student has layers 0 \(embeddings\) to 2/);
    expect(() => layerPairs([[1, 5]], 2, 4)).toThrow(/teacher layer 5 does not exist/);
  });

  it('retention = after / teacher and gap bridged = (after − before) / (teacher − before), by hand', () => {
    const report = distillationReport({ 'a/mrr': 0.5, 'b/rp@5': 0.4, 'd/mrr': 0.3 }, { 'a/mrr': 0.3, 'b/rp@5': 0.4, 'd/mrr': 0.35 }, { 'a/mrr': 0.4, 'b/rp@5': 0.38, 'c/x': 1, 'd/mrr': 0.36 });
    expect(report.retention['a/mrr']).toBeCloseTo(0.8, 12);
    expect(report.retention['b/rp@5']).toBeCloseTo(0.95, 12);
    expect(report.retention['d/mrr']).toBeCloseTo(1.2, 12);
    expect(report.gapBridged['a/mrr']).toBeCloseTo(0.5, 12);
    // No gap to bridge where the baseline equals or beats the teacher; no teacher number, no ratio.
    expect(report.gapBridged['b/rp@5']).toBeUndefined();
    expect(report.gapBridged['d/mrr']).toBeUndefined();
    expect(report.retention['c/x']).toBeUndefined();
  });
});

describe('task: distill', () => {
  let root: string;
  let teacher: string;
  let baseline: string;
  let crossEncoder: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kiln-distill-'));
    teacher = train(join(root, 'teacher'), 'configs/tiny.yaml', ['--set', 'train.steps=10', '--set', 'data.hard_negatives.k=0']);
    // The same student without the teacher: the distillation config as a plain two-tower run.
    baseline = train(join(root, 'baseline'), 'configs/tiny-distill-bert.yaml', ['--set', 'task=twotower', '--set', 'loss=[{name: infonce, temperature: 0.05, symmetric: true}]']);
    crossEncoder = train(join(root, 'ce'), 'configs/tiny-cross-encoder.yaml', ['--set', 'train.steps=10']);
  }, TIMEOUT_MS);

  it('a bi-encoder teacher: parameter counts, the report from the runs, and a teacher cache a second student reuses', () => {
    const runs = join(root, 'students');
    const args = ['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', runs, ...QUICK, '--set', `distill.teacher=${teacher}`, '--set', `distill.baseline=${baseline}`];
    const first = kiln(args);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/teacher: a bi-encoder of 2\.02M parameters; student 0\.99M \(51\.\d% fewer\); teacher cache: 0 entries reused/);
    const [firstRun] = runDirs(runs).map((r) => join(runs, r));
    const summary = readJson<Summary>(join(firstRun!, 'summary.json'));
    const teacherSummary = readJson<Summary>(join(teacher, 'summary.json'));
    const baselineSummary = readJson<Summary>(join(baseline, 'summary.json'));
    const d = summary.distillation;
    expect(summary.task).toBe('distill');
    expect(readJson<{ kind: string }>(join(firstRun!, 'model.json')).kind).toBe('two-tower');
    expect(d.teacher).toMatchObject({ path: teacher, kind: 'bi-encoder', parameters: teacherSummary.parameters });
    expect(d.student.parameters).toBe(summary.parameters);
    expect(d.reduction).toBeCloseTo(1 - summary.parameters / teacherSummary.parameters, 12);
    expect(d.baseline!.metrics).toEqual(baselineSummary.metrics);
    // The metrics both runs evaluate (the teacher's config also has STS-B; the student's does not).
    expect(Object.keys(d.retention).sort()).toEqual(['jobbert/mrr', 'jobbert/recall@5', 'tech/mrr', 'tech/rp@5']);
    for (const key of Object.keys(d.retention)) {
      const [t, b, a] = [teacherSummary.metrics[key]!, baselineSummary.metrics[key]!, summary.metrics[key]!];
      expect(d.retention[key], key).toBeCloseTo(a / t, 12);
      if (t > b) expect(d.gapBridged[key], key).toBeCloseTo((a - b) / (t - b), 12);
      else expect(d.gapBridged[key], key).toBeUndefined();
    }
    expect(first.stderr).toMatch(/distillation \(×100\): teacher 2\.02M parameters → student 0\.99M/);
    // 20 steps × 16 pairs, each query and document embedded once by the teacher, and written to the run.
    expect(d.teacherCache.misses).toBeGreaterThan(300);
    expect(d.teacherCache.misses).toBeLessThanOrEqual(640);
    expect(d.teacherCache.entries).toBe(d.teacherCache.misses);
    expect(readdirSync(join(firstRun!, 'teacher-cache')).filter((f) => f.endsWith('.arrow')).length).toBeGreaterThanOrEqual(1);

    // The student exports like any two-tower model, passes its parity check, and its card names the teacher.
    const exported = kiln(['export', '--run', firstRun!]);
    expect(exported.status, exported.stderr).toBe(0);
    const card = readJson<{ checks: { parity: { passed: boolean } }; distillation: Record<string, unknown> }>(join(firstRun!, 'onnx', 'model.json'));
    expect(card.checks.parity.passed).toBe(true);
    expect(card.distillation).toEqual({ teacher, teacherKind: 'bi-encoder', teacherParameters: teacherSummary.parameters, reduction: d.reduction, retention: d.retention, gapBridged: d.gapBridged });

    // A second student from the same teacher computes nothing: every embedding comes from the first run's cache.
    const second = kiln(args);
    expect(second.status, second.stderr).toBe(0);
    const secondRun = runDirs(runs).map((r) => join(runs, r)).find((r) => r !== firstRun)!;
    const again = readJson<Summary>(join(secondRun, 'summary.json'));
    expect(again.distillation.teacherCache).toMatchObject({ reused: d.teacherCache.entries, misses: 0 });
    // The cached values are the computed ones: the same seed trains to the same metrics.
    expect(again.metrics).toEqual(summary.metrics);
  }, TIMEOUT_MS);

  it('a cross-encoder teacher scores each positive and its mined candidates; the student learns its margins', () => {
    const ce = crossEncoder;
    const runs = join(root, 'ce-students');
    const run = train(runs, 'configs/tiny-distill-cross-encoder.yaml', ['--set', `distill.teacher=${ce}`, '--set', 'train.steps=6', '--set', 'train.warmup_steps=1']);
    const summary = readJson<Summary>(join(run, 'summary.json'));
    expect(summary.status).toBe('completed');
    expect(summary.distillation.teacher).toMatchObject({ kind: 'cross-encoder', path: ce });
    // 6 steps × 16 queries × (positive + 2 candidates): at most 288 pairs scored, each once.
    expect(summary.distillation.teacherCache.misses).toBeGreaterThan(0);
    expect(summary.distillation.teacherCache.misses).toBeLessThanOrEqual(288);
    const logged = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; value: number });
    for (const name of ['train/loss_margin_mse', 'train/loss_similarity_kl', 'train/loss_infonce', 'train/teacher_pair_accuracy']) {
      expect(logged.some((m) => m.name === name && Number.isFinite(m.value)), name).toBe(true);
    }
  }, TIMEOUT_MS);

  it('an exported teacher runs in onnxruntime: every training text is embedded before the first step', () => {
    const exported = kiln(['export', '--run', teacher, '--out', join(root, 'teacher-onnx')]);
    expect(exported.status, exported.stderr).toBe(0);
    const runs = join(root, 'onnx-students');
    const losses = 'loss=[{name: infonce, temperature: 0.05, symmetric: true}, {name: similarity_kl}, {name: embedding_mse, normalize: true}]';
    const r = kiln(['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', runs, ...QUICK, '--set', `distill.teacher=${join(root, 'teacher-onnx')}`, '--set', losses]);
    expect(r.status, r.stderr).toBe(0);
    // 30,068 ESCO title pairs: 30,068 distinct titles and 3,007 occupation labels (this slice of ESCO).
    const embedded = Number(/\(onnxruntime\): embedded (\d+) training texts/.exec(r.stderr)?.[1]);
    expect(embedded).toBeGreaterThan(30_000);
    const summary = readJson<Summary>(join(onlyRun(runs), 'summary.json'));
    expect(summary.distillation.teacher).toMatchObject({ kind: 'bi-encoder', origin: 'onnx' });
    expect(summary.distillation.teacherCache).toMatchObject({ misses: 0, entries: embedded });
    // The card carries the source run's metrics: they are the teacher's column.
    expect(summary.distillation.teacher.metrics).toEqual(Object.fromEntries(Object.entries(readJson<Summary>(join(teacher, 'summary.json')).metrics).filter(([k]) => k in summary.distillation.teacher.metrics)));
    // Layer transfer needs the eager teacher.
    const layers = kiln(['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', join(root, 'bad-onnx'), '--quiet', '--set', `distill.teacher=${join(root, 'teacher-onnx')}`]);
    expect(layers.status).toBe(2);
    expect(layers.stderr).toMatch(/loss\[3\]\.name: hidden_mse reads the teacher's layers, and an exported teacher .* runs in onnxruntime without them/);
  }, TIMEOUT_MS);

  it('a Hugging Face teacher (sentence-transformers layout, written by PyTorch) is evaluated on the student\'s splits for the report', () => {
    const layouts = join(root, 'hf');
    runPython([join(REPO_ROOT, 'test', 'models', 'hf_tiny_bert.py'), layouts]);
    const hf = join(layouts, 'st');
    const runs = join(root, 'hf-students');
    const losses = 'loss=[{name: infonce, temperature: 0.05, symmetric: true}, {name: similarity_kl}, {name: embedding_mse, normalize: true}]';
    const run = train(runs, 'configs/tiny-distill-bert.yaml', ['--set', `distill.teacher=${hf}`, '--set', losses, '--set', 'train.steps=6', '--set', 'train.warmup_steps=1']);
    const d = readJson<Summary>(join(run, 'summary.json')).distillation;
    // By hand: embeddings 120·32 + 16·32 + 2·32 + LayerNorm 2·32 = 4,480; each layer 4·(32·32 + 32)
    // + 2·32 + (32·64 + 64) + (64·32 + 32) + 2·32 = 8,544; two layers: 21,568 (no pooler, no MLM head).
    expect(d.teacher).toMatchObject({ path: hf, kind: 'bi-encoder', origin: 'hugging-face', parameters: 21_568 });
    // No summary of its own: the teacher is evaluated on the same splits at the end.
    expect(Object.keys(d.teacher.metrics).sort()).toEqual(['jobbert/mrr', 'jobbert/recall@5', 'tech/mrr', 'tech/rp@5']);
    for (const v of Object.values(d.teacher.metrics)) expect(v).toBeGreaterThanOrEqual(0);
    // Retention wherever the (random) teacher scored above zero.
    expect(Object.keys(d.retention).sort()).toEqual(Object.keys(d.teacher.metrics).filter((k) => d.teacher.metrics[k] !== 0).sort());
    // Its 120-token vocabulary is not the student's: layer transfer cannot feed it the student's ids.
    const layers = kiln(['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', join(root, 'bad-hf'), '--quiet', '--set', `distill.teacher=${hf}`]);
    expect(layers.status).toBe(2);
    expect(layers.stderr).toMatch(/loss\[3\]\.name: hidden_mse feeds the student's token ids to the teacher, but their vocabularies differ \(30522 and 120 tokens\)/);
  }, TIMEOUT_MS);

  it('student_init teacher_layers copies the teacher\'s embeddings and every other layer (DistilBERT)', () => {
    const runs = join(root, 'distilbert');
    const losses = 'loss=[{name: infonce, temperature: 0.05, symmetric: true}, {name: embedding_mse}]';
    // One step at a vanishing learning rate: the delivered weights are the initial ones.
    const r = kiln(['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', runs, ...QUICK, '--set', `distill.teacher=${teacher}`, '--set', 'distill.student_init=teacher_layers', '--set', losses, '--set', 'train.steps=1', '--set', 'train.warmup_steps=0', '--set', 'train.lr=1e-12']);
    expect(r.status, r.stderr).toBe(0);
    const run = onlyRun(runs);
    // The teacher's width, half its 2 layers; the config's 32-wide, 1-layer sizes give way.
    expect(readJson<{ encoder: { hiddenSize: number; numLayers: number } }>(join(run, 'model.json')).encoder).toMatchObject({ hiddenSize: 64, numLayers: 1 });
    expect(r.stderr).toMatch(/student_init teacher_layers: copied \d+ tensors/);
    const student = loadSafetensors(join(run, 'model.safetensors')).tensors;
    const source = loadSafetensors(join(teacher, 'model.safetensors')).tensors;
    for (const name of ['encoder.embeddings.word_embeddings.weight', 'encoder.encoder.layer.0.attention.self.query.weight', 'encoder.encoder.layer.0.output.dense.weight']) {
      const a = student.get(name)!.toTypedArray<'float32'>() as Float32Array;
      const b = source.get(name)!.toTypedArray<'float32'>() as Float32Array;
      expect(a.length, name).toBe(b.length);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      expect(maxDiff, name).toBeLessThan(1e-6);
    }
    // Student layer 0 is teacher layer 0, and the teacher's layer 1 is not copied anywhere.
    expect(student.has('encoder.encoder.layer.1.output.dense.weight')).toBe(false);
    for (const t of [...student.values(), ...source.values()]) t.dispose();
  }, TIMEOUT_MS);

  it('a run killed with -9 resumes to the same metrics as an uninterrupted one', async () => {
    const long = ['--set', `distill.teacher=${teacher}`, '--set', 'train.steps=60', '--set', 'train.checkpoint_every=20', '--set', 'train.log_every=20'];
    const straight = train(join(root, 'straight'), 'configs/tiny-distill-bert.yaml', long);
    const expected = readJson<Summary>(join(straight, 'summary.json'));

    const run = await killAfterCheckpoint(join(root, 'killed'), ['--config', 'configs/tiny-distill-bert.yaml', ...QUICK, ...long], 20);
    const resumed = kiln(['train', '--resume', run, '--quiet']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at step \d+ of 60/);
    expect(readJson<Summary>(join(run, 'summary.json')).metrics).toEqual(expected.metrics);
  }, TIMEOUT_MS);

  it('bad distillation configs exit 2, name the key, and write nothing', () => {
    const runs = join(root, 'bad');
    const cases: Array<[string[], RegExp]> = [
      [['--set', 'distill.teacher=null'], /distill\.teacher: required for task distill/],
      [['--set', `distill.teacher=${join(root, 'nowhere')}`], /distill\.teacher: .*nowhere is not a directory; expected a Kiln run/],
      [['--set', `distill.teacher=${crossEncoder}`], /loss\[1\]\.name: embedding_mse compares embeddings, and a cross-encoder teacher has none/],
      [['--set', `distill.teacher=${teacher}`, '--set', 'distill.layer_map=[[2, 1]]'], /distill\.layer_map\[0\]: student layer 2 does not exist; the student has layers 0 \(embeddings\) to 1/],
      [['--set', `distill.teacher=${teacher}`, '--set', `distill.baseline=${join(root, 'nowhere')}`], /distill\.baseline: .*summary\.json is missing/],
    ];
    for (const [extra, message] of cases) {
      const r = kiln(['train', '--config', 'configs/tiny-distill-bert.yaml', '--runs', runs, '--quiet', ...extra]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(runDirs(runs)).toEqual([]);
  }, TIMEOUT_MS);
});
