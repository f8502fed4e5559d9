#!/usr/bin/env node
// Prepares the reference data the tests compare against (`npm run refs`, run by `pretest`).
//
// Each step is a small function that checks whether its output is up to date, does the work
// only when it is not, and prints one line saying what it did. Steps run in order; the first
// failure stops the run with a non-zero exit and its message.
//
// The reference Python is Debian's /usr/bin/python3 (python3-torch, python3-numpy); the first
// python3 on PATH may be another interpreter without torch. KILN_PYTHON overrides it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';
const INSTALL_HINT = 'install python3-torch: apt-get install python3-torch python3-numpy';

class StepError extends Error {}

const rel = (path) => relative(REPO_ROOT, path) || '.';

/** Runs the reference Python; returns its result without throwing. */
function python(args, options = {}) {
  return spawnSync(PYTHON, args, { cwd: REPO_ROOT, encoding: 'utf8', ...options });
}

/** Fails with the install hint unless PYTHON runs and imports the given modules. */
function requirePythonModules(modules) {
  const probe = python(['-c', `import ${modules.join(', ')}`]);
  if (probe.error !== undefined) {
    throw new StepError(`cannot run ${PYTHON} (${probe.error.message}); ${INSTALL_HINT}, or set KILN_PYTHON to a Python that has torch`);
  }
  if (probe.status !== 0) {
    const why = (probe.stderr ?? '').trim().split('\n').pop() ?? '';
    throw new StepError(`${PYTHON} cannot import ${modules.join(', ')} (${why}); ${INSTALL_HINT}, or set KILN_PYTHON to a Python that has torch`);
  }
}

/** True when `output` is missing or older than any of `inputs`. */
function isStale(output, inputs) {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  return inputs.some((input) => statSync(input).mtimeMs > built);
}

// ---------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------

/** test/reference/cases.json: PyTorch's values and gradients for test/ops.test.ts. */
function referenceCases() {
  const script = join(REPO_ROOT, 'test', 'reference', 'gen_cases.py');
  const output = join(REPO_ROOT, 'test', 'reference', 'cases.json');
  if (!isStale(output, [script])) return `${rel(output)} is up to date`;
  const why = existsSync(output) ? `older than ${rel(script)}` : 'missing';
  requirePythonModules(['torch', 'numpy']);
  const run = python([script], { stdio: ['ignore', 'inherit', 'pipe'] });
  if (run.status !== 0) {
    throw new StepError(`${PYTHON} ${rel(script)} failed (exit ${run.status ?? run.signal}):\n${(run.stderr ?? '').trim()}`);
  }
  if (!existsSync(output)) throw new StepError(`${rel(script)} exited 0 but did not write ${rel(output)}`);
  return `${rel(output)} was ${why}: regenerated with ${PYTHON} ${rel(script)}`;
}

/**
 * .cache/pylib/safetensors: Hugging Face's `safetensors` package for the reference Python, used by
 * test/safetensors.test.ts to read Kiln's files and write files for Kiln. Debian has no package
 * for it, so the wheel is only downloaded, with the pip of the first python3 on PATH
 * (KILN_PIP_PYTHON overrides; its pip may point at a local index), and unpacked with the
 * standard library's zipfile: nothing is installed into either interpreter. runPython (test/helpers/python.ts) puts .cache/pylib on
 * PYTHONPATH. The wheel is abi3, so one build serves any CPython from 3.10 on.
 */
function pythonSafetensors() {
  const pylib = join(REPO_ROOT, '.cache', 'pylib');
  const marker = join(pylib, 'safetensors', '__init__.py');
  if (existsSync(marker)) return `${rel(marker)} is present`;
  requirePythonModules(['torch']);
  const pipPython = process.env.KILN_PIP_PYTHON ?? 'python3';
  const version = python(['-c', "import sys; print('%d.%d' % sys.version_info[:2])"]);
  if (version.status !== 0) throw new StepError(`cannot ask ${PYTHON} for its version: ${(version.stderr ?? '').trim()}`);
  const wheels = join(REPO_ROOT, '.cache', 'wheels');
  // --retries 0: offline, the default index fails fast and pip goes on to the configured ones.
  const pipArgs = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--retries', '0', '--python-version', version.stdout.trim(), '-d', wheels, 'safetensors'];
  const download = spawnSync(pipPython, pipArgs, { cwd: REPO_ROOT, encoding: 'utf8' });
  if (download.error !== undefined || download.status !== 0) {
    const why = download.error?.message ?? (download.stderr ?? '').trim().split('\n').slice(-3).join('\n');
    throw new StepError(`${pipPython} ${pipArgs.join(' ')} failed: ${why}\n(set KILN_PIP_PYTHON to a python3 whose pip can reach an index with safetensors wheels)`);
  }
  const wheel = readdirSync(wheels)
    .filter((name) => /^safetensors-.*\.whl$/.test(name))
    .map((name) => join(wheels, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (wheel === undefined) throw new StepError(`pip reported success but ${rel(wheels)} holds no safetensors wheel`);
  const unzip = python(['-m', 'zipfile', '-e', wheel, pylib]);
  if (unzip.status !== 0) throw new StepError(`${PYTHON} -m zipfile -e ${rel(wheel)} ${rel(pylib)} failed: ${(unzip.stderr ?? '').trim()}`);
  const probe = python(['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import safetensors.torch', pylib]);
  if (probe.status !== 0) {
    throw new StepError(`${rel(wheel)} was unpacked into ${rel(pylib)} but ${PYTHON} cannot import safetensors.torch: ${(probe.stderr ?? '').trim().split('\n').pop()}`);
  }
  return `${rel(marker)} was missing: unpacked ${rel(wheel)} into ${rel(pylib)}`;
}

const STEPS = [
  ['reference cases', referenceCases],
  ['python safetensors', pythonSafetensors],
];

function main() {
  for (const [name, step] of STEPS) {
    try {
      console.log(`refs: ${step()}`);
    } catch (error) {
      const message = error instanceof StepError ? error.message : (error?.stack ?? String(error));
      console.error(`refs: ${name} failed: ${message}`);
      process.exit(1);
    }
  }
}

main();
