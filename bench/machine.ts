/** Facts about the machine a benchmark ran on, shared by the benchmarks and the suite runner. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** The CPU's `model name` from /proc/cpuinfo (Node's own name elsewhere). */
export function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line !== undefined) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}
