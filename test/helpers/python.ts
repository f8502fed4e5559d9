/**
 * Runs the reference Python: Debian's /usr/bin/python3, which has python3-torch and numpy
 * (the first python3 on PATH may be another interpreter without them). KILN_PYTHON overrides.
 * `.cache/pylib` (made by test/reference/ensure.mjs) is put on PYTHONPATH for `safetensors`;
 * a test that loads a model with sentence-transformers asks for `.cache/pylib-st` instead
 * (SENTENCE_TRANSFORMERS_PYLIB), which brings its own torch 2 and must not shadow Debian's
 * torch for the other reference scripts.
 */
import { execFile, execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';
export const REFERENCE_PYLIB = join(REPO_ROOT, '.cache', 'pylib');
/** sentence-transformers, transformers and torch 2.13 for the reference Python (ensure.mjs, 'python sentence-transformers'). */
export const SENTENCE_TRANSFORMERS_PYLIB = join(REPO_ROOT, '.cache', 'pylib-st');

export interface PythonOptions {
  input?: string;
  /** PYTHONPATH (default: REFERENCE_PYLIB). */
  pythonPath?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

function pythonEnv(options: PythonOptions): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: options.pythonPath ?? REFERENCE_PYLIB, ...options.env };
}

/** Runs `code` (or a script path with args) and returns its stdout; throws with stderr on failure. */
export function runPython(args: string[], options: PythonOptions = {}): string {
  try {
    return execFileSync(PYTHON, args, { env: pythonEnv(options), input: options.input, encoding: 'utf8', maxBuffer: 1 << 28 });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${PYTHON} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** `runPython` without blocking the event loop, so a slow interpreter start overlaps other work. */
export function runPythonAsync(args: string[], options: PythonOptions = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(PYTHON, args, { env: pythonEnv(options), encoding: 'utf8', maxBuffer: 1 << 28 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${PYTHON} ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolvePromise(stdout);
    });
    child.stdin?.end(options.input ?? '');
  });
}
