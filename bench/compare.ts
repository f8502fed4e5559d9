/**
 * `npm run bench:compare`: two runs of the benchmark suite side by side, row by row, to show
 * that a change regressed nothing. Each run is a directory of the JSON files that
 * `npm run bench` (or one benchmark's `--json`) wrote, `<name>.json` per benchmark, usually a
 * copy of `bench/results/` from a checkout of each revision, measured back to back.
 *
 * For every benchmark present in both, one table: each metric's median before and after, the
 * change, Kiln / reference in each run, and a verdict (better, worse, level within the
 * tolerance, or mixed). Where the reference is PyTorch, measured again in each run, the verdict
 * also reads the Kiln / PyTorch ratio, so drift of the machine between the runs is not called a
 * regression (bench/report.ts `compareRows` says how each row is judged).
 *
 * Options: --before DIR --after DIR (required), --tolerance 0.05, --out FILE (default: stdout).
 * Exits 1 when any row is worse, 2 on bad arguments.
 *
 * @example
 * npm run bench:compare -- --before /tmp/bench-before --after bench/results --out /tmp/compare.md
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { writeFileAtomic } from '../src/util/atomic-write.js';
import { BENCH_NAMES, compareRows, renderComparison, rowsFor, type BenchName } from './report.js';

function usage(message: string): never {
  process.stderr.write(`npm run bench:compare: ${message}\n`);
  process.exit(2);
}

const { values: opts } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string' },
    tolerance: { type: 'string', default: '0.05' },
    out: { type: 'string' },
  },
  strict: true,
});
if (opts.before === undefined || opts.after === undefined) usage('--before DIR and --after DIR are required (directories of <benchmark>.json files)');
for (const [flag, dir] of [['--before', opts.before], ['--after', opts.after]] as const) {
  if (!existsSync(dir)) usage(`${flag} ${dir}: no such directory`);
}
const tolerance = Number(opts.tolerance);
if (!(tolerance >= 0 && tolerance < 1)) usage(`--tolerance: expected a fraction in [0, 1), got ${opts.tolerance}`);

function readJson(dir: string, name: BenchName): unknown {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    usage(`${path}: not JSON (${(error as Error).message})`);
  }
}

const sections: string[] = [];
const summary: string[] = [];
let worse = 0;
for (const name of BENCH_NAMES) {
  const before = readJson(opts.before, name);
  const after = readJson(opts.after, name);
  if (before === undefined && after === undefined) continue;
  if (before === undefined || after === undefined) {
    summary.push(`| ${name} | only ${before === undefined ? 'after' : 'before'} | | | | |`);
    continue;
  }
  const b = rowsFor(name, before);
  const a = rowsFor(name, after);
  // PyTorch is measured afresh in each run; targets are fixed and dist's reference is Kiln itself.
  const changes = compareRows(b.rows, a.rows, { tolerance, byReference: a.reference === 'PyTorch' });
  const count = (v: string): number => changes.filter((c) => c.verdict === v).length;
  worse += count('worse');
  summary.push(`| ${name} | ${changes.length} | ${count('better')} | ${count('level')} | ${count('mixed')} | ${count('worse')} |`);
  sections.push(`### ${name}`, '', renderComparison(changes, a.reference), '');
}

const text = [
  `Before: \`${opts.before}\`; after: \`${opts.after}\`; a change within ${Math.round(tolerance * 100)}% is level.`,
  '',
  '| benchmark | rows | better | level | mixed | worse |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...summary,
  '',
  ...sections,
].join('\n');
if (opts.out === undefined) process.stdout.write(`${text}\n`);
else writeFileAtomic(opts.out, [Buffer.from(`${text}\n`, 'utf8')]);
process.exitCode = worse > 0 ? 1 : 0;
