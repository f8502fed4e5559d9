/** Process-wide engine settings: the random seed, thread pools and build information. */
import { readFileSync } from 'node:fs';

import { mallocSetting, native, type BuildInfo } from './native.js';

/** Seeds libtorch's global CPU (and CUDA) generators: randn, rand, dropout, init. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.kt_manual_seed(seed);
}

/** Intra-op threads used by libtorch's kernels (torch.set_num_threads). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNumThreads: expected a positive integer, got ${n}`);
  native.kg_set_num_threads(n);
}

export function getNumThreads(): number {
  return native.kg_get_num_threads();
}

/** Inter-op threads; libtorch allows setting this once, before any parallel work. */
export function setNumInteropThreads(n: number): void {
  native.kg_set_num_interop_threads(n);
}

/** The allocator this process runs with, in words (src/engine/allocator.ts decides). */
export function allocatorSetting(): string {
  return mallocSetting;
}

export function buildInfo(): BuildInfo {
  return native.kg_build_info();
}

/** Why tensors cannot be put on 'cuda' in this process, as a sentence; null when they can. */
export function cudaUnavailableReason(): string | null {
  const info = buildInfo();
  if (!info.cudaCompiled) return `this libtorch (${info.torchVersion}) is built without CUDA`;
  if (!info.cudaAvailable || info.cudaDeviceCount === 0) return 'libtorch has CUDA, but no CUDA device is available (kiln info shows what it sees)';
  return null;
}

/**
 * The CPU instruction that makes bf16 matmuls fast here, or null. Without one, libtorch's CPU
 * bf16 kernels convert through fp32 and a bf16 training step is many times slower than fp32
 * (12 s against 0.75 s for configs/twotower.yaml on an AVX2-only EPYC; BENCHMARKS.md), so
 * `train.precision: auto` takes bf16 only where this names an instruction. Linux flags:
 * avx512_bf16 and amx_bf16 (x86), bf16 (Arm v8.6, e.g. Graviton3).
 */
export function cpuBf16Instruction(cpuinfo: string | null = readCpuinfo()): string | null {
  if (cpuinfo === null) return null;
  const flags = new Set(
    cpuinfo
      .split('\n')
      .filter((line) => /^(flags|Features)\s*:/.test(line))
      .flatMap((line) => line.slice(line.indexOf(':') + 1).trim().split(/\s+/)),
  );
  return ['amx_bf16', 'avx512_bf16', 'bf16'].find((flag) => flags.has(flag)) ?? null;
}

function readCpuinfo(): string | null {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}

/**
 * Tensor handles that are alive: created, and neither disposed nor collected. A loop that
 * releases what it makes keeps this constant; use it to find leaks.
 */
export function liveTensorCount(): number {
  return native.kg_live_tensors();
}
