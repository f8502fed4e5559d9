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
 *
 * The tuned measurement needs a heap that can grow: in about 1 process in 120 on this machine
 * (node is not position-independent here, so its brk heap sits just above the binary) another
 * mapping starts right where the heap ends, brk fails, and glibc serves the main arena from
 * separate mmapped pieces that cannot merge, so each larger block faults in afresh whatever the
 * thresholds (measured: 250,017 faults, heap grown by 0, no room above it). The probe reports
 * the room above the heap before its loop; a process without 64 MiB of it is not a measurement
 * of the tuning, so the test starts a fresh one (a new random layout), up to 5 times.
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

// Beside the faults: the free address space right above the brk heap before the loop (null: no
// heap), and how far the heap grew over it (blocks served from the main heap grow it by about
// 31 MiB; blocks served by mmap leave it as it was).
const FAULT_PROBE = `
import { readFileSync } from 'node:fs';
import { allocatorSetting, dispose, zeros } from './src/engine/index.ts';
const MiB = 1024 * 1024;
const layout = () => {
  const ranges = readFileSync('/proc/self/maps', 'utf8').trim().split('\\n').map((l) => {
    const [start, end] = l.split(' ')[0].split('-').map((h) => parseInt(h, 16));
    return { start, end, heap: l.endsWith('[heap]') };
  });
  const heap = ranges.find((r) => r.heap);
  if (heap === undefined) return { end: 0, room: null };
  const next = Math.min(...ranges.filter((r) => r.start >= heap.end).map((r) => r.start));
  return { end: heap.end, room: (next - heap.end) / MiB };
};
const start = layout();
const before = process.resourceUsage().minorPageFault;
for (let size = MiB; size <= 31 * MiB; size += MiB / 2) dispose(zeros([size / 4]));
const faults = process.resourceUsage().minorPageFault - before;
console.log(JSON.stringify({ faults, heapRoomMiB: start.room, heapGrowthMiB: (layout().end - start.end) / MiB, setting: allocatorSetting() }));
`;

interface ProbeResult {
  faults: number;
  heapRoomMiB: number | null;
  heapGrowthMiB: number;
  setting: string;
}

function probe(env: Record<string, string>): ProbeResult {
  const inherited = { ...process.env };
  delete inherited['KILN_MALLOC'];
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', FAULT_PROBE], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...inherited, ...env },
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as ProbeResult;
}

/** A tuned probe in a process whose heap has room to grow (the header), up to `tries` processes. */
function tunedProbeWithRoom(tries: number): ProbeResult {
  const blocked: ProbeResult[] = [];
  for (let i = 0; i < tries; i++) {
    const result = probe({});
    if (result.heapRoomMiB !== null && result.heapRoomMiB >= 64) return result;
    blocked.push(result);
  }
  throw new Error(`no heap with room to grow in ${tries} processes: ${JSON.stringify(blocked)}`);
}

describe('the tuning as the addon loads', () => {
  it('serves growing tensors from the heap: 1–31 MiB fault < 50,000 pages tuned, > 200,000 with KILN_MALLOC=system', () => {
    const tuned = tunedProbeWithRoom(5);
    const system = probe({ KILN_MALLOC: 'system' });
    expect(tuned.setting).toMatch(/^glibc, tuned by Kiln \(mmap threshold 32 MiB, trim threshold 1024 MiB/);
    expect(system.setting).toBe('system default (KILN_MALLOC=system)');
    // 976 MiB over 61 fresh mmaps = 249,856 pages.
    expect(system.faults, JSON.stringify(system)).toBeGreaterThan(200_000);
    expect(tuned.faults, JSON.stringify(tuned)).toBeLessThan(50_000);
    expect(tuned.heapGrowthMiB, JSON.stringify(tuned)).toBeGreaterThan(30);
  }, 60_000);
});
