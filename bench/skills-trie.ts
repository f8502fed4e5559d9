/**
 * `npm run bench:skills-trie` (or `npm run bench -- --only skills-trie`): throughput of the
 * taxonomy trie tagger (src/data/skill-trie.ts) on one core, on real job-posting sentences.
 *
 * Target: ≥ 10,000 sentences/s on one core (median over repetitions).
 *
 * Method:
 *   - The trie: `buildTaxonomyTrie` over $KILN_DATA (ESCO v1.1.1 skills and the Stack Overflow
 *     tag synonyms), timed from reading the CSVs to the finished trie; its label count; the
 *     saved form (`JSON.stringify(trie.toJSON())`) in bytes of UTF-8; and the time to load that
 *     back (`JSON.parse` + `SkillTrie.fromJSON`). The loaded trie is the one measured, as a
 *     tagger that reads the saved file would use it.
 *   - The sentences: every SkillSpan sentence of train and dev, both subsets (4,800 + 3,174),
 *     loaded before any timing, in file order.
 *   - Two untimed passes over all sentences (V8 tier-up); the second one's time sets how many
 *     passes make one repetition: the fewest with at least `--min-seconds` of work. Then `--reps`
 *     repetitions of that many passes, each one `trie.match(text)` per sentence; sentences/s per
 *     repetition = passes × sentences / wall time. Reported: median and min–max over
 *     repetitions.
 *   - One core: matching is synchronous JavaScript on the main thread, so it runs on one core at
 *     a time. Each repetition also records its CPU time (process.cpuUsage, user + system) over
 *     wall time: well under 1 means the thread waited for a core another process held (the
 *     figure is then a floor), above 1 means V8's helper threads (concurrent GC) worked alongside.
 *     Sentences per CPU-second is printed beside it for that reason; the target is judged on the
 *     wall-clock rate.
 *   - Every pass must find the same number of matches (a check that the work was done).
 *
 * Options: --reps 5 --min-seconds 2 --json FILE --strict (exit 1 when the target is missed).
 * The data root is $KILN_DATA, else ../shared/datasets beside the repository.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { createContext } from '../src/data/files.js';
import { skillspan } from '../src/data/recipes/skillspan.js';
import { buildTaxonomyTrie } from '../src/data/skill-labels.js';
import { SkillTrie } from '../src/data/skill-trie.js';
import { cpuModel } from './machine.js';
import { median, type SkillsTrieJson } from './report.js';

const TARGET_SENTENCES_PER_SECOND = 10_000;
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    'min-seconds': { type: 'string', default: '2' },
    json: { type: 'string' },
    strict: { type: 'boolean', default: false },
  },
  strict: true,
});

function positiveInt(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name}: expected a positive integer, got ${String(text)}`);
  return v;
}
function positiveNumber(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: expected a positive number of seconds, got ${String(text)}`);
  return v;
}

const reps = positiveInt('reps', opts.reps);
const minSeconds = positiveNumber('min-seconds', opts['min-seconds']);
const dataRoot = process.env['KILN_DATA'] ?? join(REPO, '..', 'shared', 'datasets');

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

console.log(`skills-trie: taxonomy trie tagger on SkillSpan train + dev, one thread; ${reps} repetitions of ≥ ${minSeconds} s; target ≥ ${TARGET_SENTENCES_PER_SECOND.toLocaleString('en-US')} sentences/s`);
console.log(`  CPU   ${cpuModel()}`);
console.log(`  node  ${process.version}`);
console.log(`  data  ${dataRoot}`);

// ---- the trie: build, save, load ----
const ctx = createContext({ dataRoot, onBadRow: 'fail' });
let t0 = process.hrtime.bigint();
const built = (await buildTaxonomyTrie(ctx)).trie;
const buildSeconds = seconds(t0);
const saved = JSON.stringify(built.toJSON());
const jsonBytes = Buffer.byteLength(saved, 'utf8');
t0 = process.hrtime.bigint();
const trie = SkillTrie.fromJSON(JSON.parse(saved) as unknown, 'skill trie (in memory)');
const loadSeconds = seconds(t0);
console.log(`  trie  ${trie.size.toLocaleString('en-US')} labels; built in ${buildSeconds.toFixed(2)} s; saved JSON ${(jsonBytes / 2 ** 20).toFixed(1)} MiB, loaded in ${loadSeconds.toFixed(2)} s`);

// ---- the sentences ----
const train = await skillspan.load(ctx, { split: 'train', subset: 'all' });
const dev = await skillspan.load(ctx, { split: 'dev', subset: 'all' });
const texts = [...train, ...dev].map((e) => e.text);
const meanChars = texts.reduce((n, t) => n + t.length, 0) / texts.length;
console.log(`  text  ${texts.length.toLocaleString('en-US')} sentences (train ${train.length.toLocaleString('en-US')}, dev ${dev.length.toLocaleString('en-US')}), ${meanChars.toFixed(1)} characters on average`);

/** One pass over every sentence; the number of matches found. */
function pass(): number {
  let matches = 0;
  for (const text of texts) matches += trie.match(text).length;
  return matches;
}

// ---- warm-up and calibration ----
const matchesPerPass = pass();
t0 = process.hrtime.bigint();
if (pass() !== matchesPerPass) throw new Error('skills-trie: two passes over the same sentences found different numbers of matches');
const passSeconds = seconds(t0);
const passes = Math.max(1, Math.ceil(minSeconds / passSeconds));
console.log(`  warm  2 untimed passes (${matchesPerPass.toLocaleString('en-US')} matches each; the second took ${passSeconds.toFixed(3)} s) → ${passes} pass${passes === 1 ? '' : 'es'} per repetition`);

// ---- timed repetitions ----
const sentencesPerSecond: number[] = [];
const sentencesPerCpuSecond: number[] = [];
const cpuShare: number[] = [];
for (let r = 0; r < reps; r++) {
  const cpu0 = process.cpuUsage();
  t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) {
    if (pass() !== matchesPerPass) throw new Error(`skills-trie: repetition ${r + 1}, pass ${p + 1} found a different number of matches than the warm-up`);
  }
  const wall = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const n = passes * texts.length;
  sentencesPerSecond.push(n / wall);
  sentencesPerCpuSecond.push(n / cpuSeconds);
  cpuShare.push(cpuSeconds / wall);
  process.stderr.write(`  repetition ${r + 1}/${reps}: ${(n / wall).toFixed(0)} sentences/s (${wall.toFixed(2)} s wall, CPU/wall ${(cpuSeconds / wall).toFixed(2)})\n`);
}

const med = median(sentencesPerSecond);
const passed = med >= TARGET_SENTENCES_PER_SECOND;
const report: SkillsTrieJson = {
  config: { reps, minSeconds, passes, dataRoot },
  sentences: { count: texts.length, train: train.length, dev: dev.length, meanChars },
  trie: { labels: trie.size, buildSeconds, loadSeconds, jsonBytes },
  matchesPerPass,
  sentencesPerSecond,
  sentencesPerCpuSecond,
  cpuShare,
  target: { sentencesPerSecond: TARGET_SENTENCES_PER_SECOND },
  passed,
};

const range = (xs: number[], digits = 0): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
console.log('');
console.log('| metric | median | min–max |');
console.log('|---|---:|---:|');
console.log(`| sentences/s (wall) | ${med.toFixed(0)} | ${range(sentencesPerSecond)} |`);
console.log(`| sentences per CPU-second | ${median(sentencesPerCpuSecond).toFixed(0)} | ${range(sentencesPerCpuSecond)} |`);
console.log(`| CPU / wall | ${median(cpuShare).toFixed(2)} | ${range(cpuShare, 2)} |`);
console.log(`| µs per sentence (wall) | ${(1e6 / med).toFixed(1)} | |`);
console.log('');
console.log(`trie: ${trie.size.toLocaleString('en-US')} labels, build ${buildSeconds.toFixed(2)} s, saved JSON ${jsonBytes.toLocaleString('en-US')} bytes (${(jsonBytes / 2 ** 20).toFixed(1)} MiB), load ${loadSeconds.toFixed(2)} s`);
console.log(`target ≥ ${TARGET_SENTENCES_PER_SECOND.toLocaleString('en-US')} sentences/s on one core: ${passed ? 'PASS' : 'MISS'} (median ${med.toFixed(0)})`);

if (opts.json !== undefined) {
  const out = resolve(opts.json);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`Wrote ${opts.json}`);
}
if (opts.strict && !passed) process.exitCode = 1;
