/**
 * Kiln's malloc tuning (src/engine/allocator.ts): when it applies, and that it takes effect.
 *
 * The effect test, in a child process, allocates four 8 MiB tensors, frees them, and does that
 * 50 times, counting the process's minor page faults over the loop. Under glibc's defaults the
 * freed 32 MiB at the top of the heap is more than twice the (dynamic) mmap threshold, so it is
 * trimmed back to the system and its 8,192 pages fault in again in most rounds (measured:
 * 179,000–406,000 faults; how often glibc trims varies from run to run); with Kiln's thresholds
 * it stays mapped and is reused (4,000–14,000).
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

const FAULT_PROBE = `
import { allocatorSetting, dispose, zeros } from './src/engine/index.ts';
const round = () => { const blocks = [0, 1, 2, 3].map(() => zeros([2 * 1024 * 1024])); dispose(blocks); };
round(); round();
const before = process.resourceUsage().minorPageFault;
for (let i = 0; i < 50; i++) round();
console.log(JSON.stringify({ faults: process.resourceUsage().minorPageFault - before, setting: allocatorSetting() }));
`;

function probe(env: Record<string, string>): { faults: number; setting: string } {
  const inherited = { ...process.env };
  delete inherited['KILN_MALLOC'];
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', FAULT_PROBE], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...inherited, ...env },
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { faults: number; setting: string };
}

describe('the tuning as the addon loads', () => {
  it('keeps freed blocks mapped: 50 rounds of 4 × 8 MiB fault < 50,000 pages tuned, > 100,000 with KILN_MALLOC=system', () => {
    const tuned = probe({});
    const system = probe({ KILN_MALLOC: 'system' });
    expect(tuned.setting).toMatch(/^glibc, tuned by Kiln \(mmap threshold 32 MiB, trim threshold 1024 MiB/);
    expect(system.setting).toBe('system default (KILN_MALLOC=system)');
    // 50 rounds × 4 blocks × 2,048 pages = 409,600 when every round faults them in again.
    expect(system.faults).toBeGreaterThan(100_000);
    expect(tuned.faults).toBeLessThan(50_000);
  }, 60_000);
});
