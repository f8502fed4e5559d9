/**
 * Kiln's malloc tuning (src/engine/allocator.ts): when it applies, and that it takes effect.
 *
 * The effect test, in a child process, allocates and frees one tensor per size from 1 MiB to
 * 31 MiB in steps of 0.5 MiB, counting the process's minor page faults over the loop. Under
 * glibc's defaults each free raises the mmap threshold to the freed size only, so the next,
 * larger tensor is a fresh mmap whose pages all fault in: 61 sizes summing to 976 MiB, about
 * 250,000 faults, every run. With Kiln's fixed 32 MiB threshold every size comes from the heap,
 * which grows by the difference only (measured: 10,000–17,000). A probe that frees the same
 * sizes again and again is no test: under glibc's defaults it faults 16,000–820,000 times,
 * depending on how the heap happens to settle.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { KILN_MALLOC_TUNING, decideMallocTuning } from '../src/engine/allocator.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('decideMallocTuning', () => {
  it('tunes glibc by default, with the 32 MiB mmap and 1 GiB trim thresholds', () => {
    const decision = decideMallocTuning({ PATH: '/usr/bin' });
    expect(decision.tuning).toEqual({ mmapThreshold: 33_554_432, trimThreshold: 1_073_741_824 });
    expect(decision.tuning).toEqual(KILN_MALLOC_TUNING);
    expect(decideMallocTuning({ KILN_MALLOC: 'tuned' }).tuning).toEqual(KILN_MALLOC_TUNING);
  });

  it('leaves malloc alone when the environment chose: KILN_MALLOC=system, a preloaded allocator, MALLOC_*, GLIBC_TUNABLES', () => {
    expect(decideMallocTuning({ KILN_MALLOC: 'system' })).toEqual({ tuning: null, reason: 'system default (KILN_MALLOC=system)' });
    expect(decideMallocTuning({ LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' })).toEqual({ tuning: null, reason: 'jemalloc (LD_PRELOAD)' });
    expect(decideMallocTuning({ LD_PRELOAD: 'libtcmalloc_minimal.so.4' }).reason).toBe('tcmalloc (LD_PRELOAD)');
    expect(decideMallocTuning({ MALLOC_ARENA_MAX: '2' }).reason).toBe("glibc, the user's settings (MALLOC_ARENA_MAX)");
    expect(decideMallocTuning({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' }).tuning).toBeNull();
    // Unrelated preloads and tunables do not count as a choice of allocator.
    expect(decideMallocTuning({ LD_PRELOAD: 'libfaketime.so.1', GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX2' }).tuning).toEqual(KILN_MALLOC_TUNING);
  });

  it('names the accepted values when KILN_MALLOC is something else, and leaves malloc alone', () => {
    const decision = decideMallocTuning({ KILN_MALLOC: 'jemalloc' });
    expect(decision.tuning).toBeNull();
    expect(decision.reason).toBe('system default (KILN_MALLOC=jemalloc is not one of: tuned, system)');
  });
});

// Beside the faults, how far the brk heap grew over the loop: blocks served from the main heap
// grow it by about 31 MiB, blocks served by mmap (or by another arena) leave it as it was.
const FAULT_PROBE = `
import { readFileSync } from 'node:fs';
import { allocatorSetting, dispose, zeros } from './src/engine/index.ts';
const MiB = 1024 * 1024;
const heapEnd = () => {
  const line = readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.endsWith('[heap]'));
  return line === undefined ? 0 : parseInt(line.split('-')[1], 16);
};
const endBefore = heapEnd();
const before = process.resourceUsage().minorPageFault;
for (let size = MiB; size <= 31 * MiB; size += MiB / 2) dispose(zeros([size / 4]));
const faults = process.resourceUsage().minorPageFault - before;
console.log(JSON.stringify({ faults, heapGrowthMiB: (heapEnd() - endBefore) / MiB, setting: allocatorSetting() }));
`;

function probe(env: Record<string, string>): { faults: number; heapGrowthMiB: number; setting: string } {
  const inherited = { ...process.env };
  delete inherited['KILN_MALLOC'];
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', FAULT_PROBE], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...inherited, ...env },
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { faults: number; heapGrowthMiB: number; setting: string };
}

describe('the tuning as the addon loads', () => {
  it('serves growing tensors from the heap: 1–31 MiB fault < 50,000 pages tuned, > 200,000 with KILN_MALLOC=system', () => {
    const tuned = probe({});
    const system = probe({ KILN_MALLOC: 'system' });
    expect(tuned.setting).toMatch(/^glibc, tuned by Kiln \(mmap threshold 32 MiB, trim threshold 1024 MiB/);
    expect(system.setting).toBe('system default (KILN_MALLOC=system)');
    // 976 MiB over 61 fresh mmaps = 249,856 pages.
    expect(system.faults, JSON.stringify(system)).toBeGreaterThan(200_000);
    expect(tuned.faults, JSON.stringify(tuned)).toBeLessThan(50_000);
  }, 60_000);
});
