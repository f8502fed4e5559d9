/**
 * How Kiln sets glibc's malloc for a training or serving process, decided from the environment.
 *
 * Why: glibc serves every allocation above its mmap threshold (128 KiB at start, raised
 * dynamically to at most 32 MiB) with a fresh mmap and gives it back with munmap on free, and
 * it trims the heap top back to the system above its trim threshold. A training step allocates
 * and frees the same activation-sized blocks every step, so each step faulted them in again:
 * `npm run bench:train` counted about 4,100 minor page faults per bf16 step in Kiln against
 * about 130 for PyTorch, and the step ran 1.16× PyTorch's time. With the thresholds below the
 * blocks stay mapped and are reused (BENCHMARKS.md, issue #17). PyTorch users on CPU get the
 * same effect from jemalloc or tcmalloc through LD_PRELOAD; Kiln does it in-process so that
 * `npx kiln train` needs no wrapper.
 *
 * It relies on a brk heap that can grow. In about 1 process in 120 here another mapping sits
 * right above the heap (node is not position-independent on Debian, so the heap starts just
 * above the binary); glibc then extends the main arena with separate mmapped pieces that cannot
 * merge, so each new, larger block faults in afresh (seen by test/allocator.test.ts's probe).
 * Freed pieces stay in the arena, so same-sized blocks of later steps should still be reused
 * (glibc's design; not measured here).
 *
 * The environment wins: with KILN_MALLOC=system, with a preloaded allocator, or with any glibc
 * malloc setting of the user's own (MALLOC_* variables, GLIBC_TUNABLES glibc.malloc.*), Kiln
 * leaves malloc alone.
 */

/** The mallopt settings Kiln applies. */
export interface MallocTuning {
  /** M_MMAP_THRESHOLD: allocations at or above this size are mmapped. 32 MiB is glibc's maximum on 64-bit. */
  mmapThreshold: number;
  /** M_TRIM_THRESHOLD: free memory at the top of a heap beyond this is returned to the system. */
  trimThreshold: number;
}

export const KILN_MALLOC_TUNING: Readonly<MallocTuning> = {
  mmapThreshold: 32 * 1024 * 1024,
  trimThreshold: 1024 * 1024 * 1024,
};

/** What to do with malloc in this process, and why, in words for `kiln info`. */
export interface MallocDecision {
  tuning: MallocTuning | null;
  reason: string;
}

const PRELOADED_ALLOCATOR = /(jemalloc|tcmalloc|mimalloc|hoard|snmalloc)/i;

/** Decides from the environment alone (pure, so tests can pass any environment). */
export function decideMallocTuning(env: NodeJS.ProcessEnv): MallocDecision {
  const choice = env['KILN_MALLOC'];
  if (choice === 'system') return { tuning: null, reason: 'system default (KILN_MALLOC=system)' };
  if (choice !== undefined && choice !== '' && choice !== 'tuned') {
    return { tuning: null, reason: `system default (KILN_MALLOC=${choice} is not one of: tuned, system)` };
  }
  const preload = env['LD_PRELOAD'] ?? '';
  const allocator = PRELOADED_ALLOCATOR.exec(preload);
  if (allocator !== null) return { tuning: null, reason: `${allocator[1]!.toLowerCase()} (LD_PRELOAD)` };
  const mallocVariable = Object.keys(env).find((key) => key.startsWith('MALLOC_') && env[key] !== undefined);
  if (mallocVariable !== undefined) return { tuning: null, reason: `glibc, the user's settings (${mallocVariable})` };
  if ((env['GLIBC_TUNABLES'] ?? '').includes('glibc.malloc.')) return { tuning: null, reason: "glibc, the user's settings (GLIBC_TUNABLES)" };
  return { tuning: { ...KILN_MALLOC_TUNING }, reason: describeTuning(KILN_MALLOC_TUNING) };
}

function describeTuning(tuning: MallocTuning): string {
  const mib = (bytes: number): string => `${bytes / (1024 * 1024)} MiB`;
  return `glibc, tuned by Kiln (mmap threshold ${mib(tuning.mmapThreshold)}, trim threshold ${mib(tuning.trimThreshold)}; KILN_MALLOC=system turns this off)`;
}
