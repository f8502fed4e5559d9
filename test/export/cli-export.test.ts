/**
 * `kiln export` end to end on a model trained by `kiln train` (configs/tiny.yaml, shortened):
 * fp32 and int8 exports checked against the eager model on the run's own evaluation texts,
 * `--eval` comparing metrics, and usage errors that exit 2 without writing anything.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/python.js';
import { DATA_ROOT } from '../data/root.js';
import { parseModelCard } from '../../src/export/card.js';

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
  run = join(runs, readdirSync(runs)[0]!);
}, 120_000);

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
});
