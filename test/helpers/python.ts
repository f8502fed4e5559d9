/**
 * Runs the reference Python: Debian's /usr/bin/python3, which has python3-torch and numpy
 * (the first python3 on PATH may be another interpreter without them). KILN_PYTHON overrides.
 * `.cache/pylib` (made by test/reference/ensure.mjs) is put on PYTHONPATH for `safetensors`.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';

/** Runs `code` (or a script path with args) and returns its stdout; throws with stderr on failure. */
export function runPython(args: string[], options: { input?: string } = {}): string {
  const env = { ...process.env, PYTHONPATH: join(REPO_ROOT, '.cache', 'pylib') };
  try {
    return execFileSync(PYTHON, args, { env, input: options.input, encoding: 'utf8', maxBuffer: 1 << 28 });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${PYTHON} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}
