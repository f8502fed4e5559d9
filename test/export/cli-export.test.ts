/**
 * `kiln export` end to end on a model trained by `kiln train` (configs/tiny.yaml, shortened):
 * fp32 and int8 exports checked against the eager model on the run's own evaluation texts,
 * `--eval` comparing metrics, and usage errors that exit 2 without writing anything. Then the
 * export goes on as a user's would: `kiln embed` over the real ESCO occupations and JobBERT
 * titles, again with change detection, and `kiln serve`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/python.js';
import { DATA_ROOT } from '../data/root.js';
import { onlyRun } from '../helpers/cli.js';
import { RunStore } from '../../src/track/store.js';
import { parseModelCard } from '../../src/export/card.js';
import { readEmbeddings } from '../../src/serve/arrow-io.js';
import { ExportedModel } from '../../src/serve/exported-model.js';
import { normaliseText } from '../../src/serve/embed.js';

const BIN = join(REPO_ROOT, 'bin', 'kiln.js');
const ENV = { ...process.env, KILN_DATA: DATA_ROOT };

function kiln(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: REPO_ROOT, env: ENV });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let run = '';

beforeAll(() => {
  const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
  const r = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--quiet', '--set', 'train.steps=10', '--set', 'train.eval_every=0', '--set', 'train.checkpoint_every=10']);
  expect(r.status, r.stderr).toBe(0);
  run = onlyRun(runs);
}, 300_000); // a training with a full final evaluation: minutes on a busy 2-core machine

const readCard = (dir: string) => parseModelCard(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')), join(dir, 'model.json'));

describe('kiln export (a run trained by kiln train)', () => {
  it('exports fp32 to <run>/onnx after a parity check on the run\'s evaluation texts', () => {
    const r = kiln(['export', '--run', run]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^exported .+@[0-9a-f]{12} \(two-tower, [\d,]+ parameters, opset 17, fp32\) to .+\/onnx in/);
    expect(r.stderr).toMatch(/parity \(texts from the run's evaluation splits\): 512 outputs, max \|Δ\| \S+, min cosine 1\.000000 → pass/);
    const card = readCard(join(run, 'onnx'));
    expect(card.checks?.parity?.passed).toBe(true);
    expect(card.checks?.parity?.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(card.source.run).toBe(run.split('/').pop());
    expect(Object.keys(card.metrics)).toContain('jobbert/mrr');
    if (card.kind === 'two-tower') expect(card.prompts).toEqual({ title: 'title: {text}', occupation: 'occupation: {text}' });
    // The export is a run of its own in the store, made from the training run, with its checks.
    const store = RunStore.open(dirname(run));
    const exports = store.getRun(basename(run)).children.filter((c) => c.kind === 'export');
    expect(exports.at(-1)).toMatchObject({ status: 'finished', path: join(run, 'onnx'), message: card.modelId });
    const stored = store.getRun(exports.at(-1)!.id);
    expect(stored.results['parity/maxAbsDiff']).toBe(card.checks!.parity!.maxAbsDiff);
    expect(stored.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining(['model.json', 'model.onnx', 'tokenizer.json']));
    store.close();
  });

  it('exports int8 and, with --eval, loses at most 1 point on every split\'s main metric', () => {
    const r = kiln(['export', '--run', run, '--quantize', 'int8', '--eval']);
    expect(r.status, r.stderr).toBe(0);
    const card = readCard(join(run, 'onnx-int8'));
    expect(card.quantization).toBe('int8');
    expect(card.checks?.parity?.minCosine).toBeGreaterThanOrEqual(0.99);
    const evaluation = card.checks?.evaluation;
    expect(evaluation?.passed).toBe(true);
    expect(evaluation?.maxDropPoints).toBeLessThanOrEqual(1);
    expect(Object.keys(evaluation?.exported ?? {}).sort()).toEqual(Object.keys(evaluation?.eager ?? {}).sort());
    expect(Object.keys(evaluation?.eager ?? {})).toEqual(expect.arrayContaining(['jobbert/mrr', 'tech/rp@5', 'stsb/spearman']));
    expect(r.stderr).toMatch(/jobbert\/mrr\s+eager\s+\d+\.\d\d\s+onnx\s+\d+\.\d\d/);
  });

  it('exits 2 and writes nothing on bad arguments or a directory that is not a run', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kiln-export-')), 'model');
    const badOpset = kiln(['export', '--run', run, '--out', out, '--opset', '9']);
    expect(badOpset.status).toBe(2);
    expect(badOpset.stderr).toMatch(/--opset 9: expected an integer from 13 to 20/);
    const badQuantize = kiln(['export', '--run', run, '--out', out, '--quantize', 'int4']);
    expect(badQuantize.status).toBe(2);
    expect(badQuantize.stderr).toMatch(/quantize.*int4/s);
    const notARun = kiln(['export', '--run', tmpdir(), '--out', out]);
    expect(notARun.status).toBe(2);
    expect(notARun.stderr).toMatch(/model\.json is missing; expected a run directory/);
    expect(existsSync(out)).toBe(false);
  });

  it('embeds the ESCO occupations and the JobBERT titles with the export, and a re-run reuses every vector', async () => {
    const model = join(run, 'onnx');
    const work = mkdtempSync(join(tmpdir(), 'kiln-embed-'));
    const occupations = join(DATA_ROOT, 'esco-v1.1.1', 'occupations_en.csv');
    const first = kiln(['embed', '--model', model, '--input', occupations, '--id-field', 'conceptUri', '--text-field', 'preferredLabel', '--type', 'occupation', '--out', join(work, 'occupations.arrow'), '--quiet']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/embedded 3007 rows: 0 reused, 0 deduplicated, 3007 computed/);
    const again = kiln(['embed', '--model', model, '--input', occupations, '--id-field', 'conceptUri', '--text-field', 'preferredLabel', '--type', 'occupation', '--previous', join(work, 'occupations.arrow'), '--out', join(work, 'occupations.arrow'), '--quiet']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/embedded 3007 rows: 3007 reused, 0 deduplicated, 0 computed/);

    const file = readEmbeddings(join(work, 'occupations.arrow'));
    expect(file.ids[0]).toMatch(/^http:\/\/data\.europa\.eu\/esco\/occupation\//);
    expect(file.dimension).toBe(64);
    // The stored vectors are the exported model's, with the occupation prompt applied.
    const exported = await ExportedModel.load(model);
    try {
      const rows = [0, 1, 2, 3, 4];
      const texts = rows.map((r) => csvLabel(occupations, file.ids[r]!));
      const direct = await exported.embed(texts.map(normaliseText), { side: 'doc', inputType: 'occupation' });
      rows.forEach((r, k) => direct[k]!.forEach((v, j) => expect(file.vectors[r]![j]).toBeCloseTo(v, 6)));
    } finally {
      await exported.release();
    }

    const titles = kiln(['embed', '--model', model, '--input', join(DATA_ROOT, 'jobbert-titles', 'titles.csv'), '--text-field', 'vacancyTitle', '--side', 'query', '--type', 'title', '--out', join(work, 'titles.arrow'), '--quiet']);
    expect(titles.status, titles.stderr).toBe(0);
    expect(titles.stdout).toMatch(/embedded (\d+) rows: 0 reused, (\d+) deduplicated, (\d+) computed/);
    const [, written, deduplicated, computed] = titles.stdout.match(/embedded (\d+) rows: 0 reused, (\d+) deduplicated, (\d+) computed/)!.map(Number);
    expect(deduplicated! + computed!).toBe(written);
    expect(deduplicated).toBeGreaterThan(0); // vacancy titles repeat
  }, 120_000);

  it('serves the export: /embed answers with the exported vectors, and SIGTERM exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--model', join(run, 'onnx'), '--port', '0'], { cwd: REPO_ROOT, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', () => reject(new Error('kiln serve exited before listening')));
    });
    const url = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)![1]!;
    const reply = await fetch(`${url}/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ texts: ['data engineer', 'nurse'], side: 'query', type: 'title' }) });
    expect(reply.status).toBe(200);
    const body = (await reply.json()) as { vectors: number[][]; dimension: number };
    expect(body.dimension).toBe(64);
    const exported = await ExportedModel.load(join(run, 'onnx'));
    try {
      const direct = await exported.embed(['data engineer', 'nurse'], { side: 'query', inputType: 'title' });
      direct.forEach((v, i) => v.forEach((x, j) => expect(body.vectors[i]![j]).toBeCloseTo(x, 6)));
    } finally {
      await exported.release();
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});

/** The preferredLabel of an ESCO occupation URI, read independently of kiln embed's CSV reader. */
function csvLabel(path: string, uri: string): string {
  const line = readFileSync(path, 'utf8').split('\n').find((l) => l.includes(`,${uri},`))!;
  // conceptType,conceptUri,iscoGroup,preferredLabel,… : the label is the fourth field (never quoted before it).
  const after = line.slice(line.indexOf(`,${uri},`) + uri.length + 2);
  const fields = after.split(',');
  return fields[1]!.replace(/^"|"$/g, '');
}
