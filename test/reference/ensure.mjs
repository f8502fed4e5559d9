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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/**
 * The Python packages test/export/sentence-transformers.test.ts loads a `kiln export --format
 * sentence-transformers` directory with, for the reference Python: sentence-transformers, and
 * through it transformers, tokenizers, huggingface_hub, safetensors and torch. They go into
 * .cache/pylib-st, a sibling of .cache/pylib that only that test puts on PYTHONPATH, because
 * the set includes its own torch: the pip index here has no sentence-transformers that runs on
 * Debian's torch 1.13 (sentence-transformers 6 needs transformers ≥ 5, which needs torch ≥ 2.5),
 * so torch 2.13 (the CPU wheel the machine's pip finds) comes along and must not shadow
 * Debian's torch for the other reference scripts.
 *
 * As for safetensors above: `pip download` (with dependencies, wheels only, for the reference
 * Python's version) into a fresh folder, then every wheel unpacked with the standard library's
 * zipfile; nothing is installed into either interpreter. The marker file records the pins, so
 * changing them here re-runs the step.
 */
const SENTENCE_TRANSFORMERS_PINS = ['sentence-transformers==6.0.1', 'transformers==5.18.0', 'tokenizers==0.23.2', 'huggingface_hub==1.33.0', 'safetensors==0.8.0', 'torch==2.13.0'];

/** Unpacks wheels into a folder as an installer would lay out their importable files (a wheel's *.data/purelib and platlib go to the top). */
const UNPACK_WHEELS = `
import os, shutil, sys, zipfile
target, wheels = sys.argv[1], sys.argv[2:]
for wheel in wheels:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
for entry in os.listdir(target):
    if entry.endswith('.data'):
        for scheme in ('purelib', 'platlib'):
            inner = os.path.join(target, entry, scheme)
            if os.path.isdir(inner):
                shutil.copytree(inner, target, dirs_exist_ok=True)
        shutil.rmtree(os.path.join(target, entry))
`;

function pythonSentenceTransformers() {
  const pylib = join(REPO_ROOT, '.cache', 'pylib-st');
  const marker = join(pylib, '.kiln-pins');
  const pins = SENTENCE_TRANSFORMERS_PINS.join(' ');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === pins) return `${rel(pylib)} holds ${pins}`;
  const pipPython = process.env.KILN_PIP_PYTHON ?? 'python3';
  const version = python(['-c', "import sys; print('%d.%d' % sys.version_info[:2])"]);
  if (version.status !== 0) throw new StepError(`cannot ask ${PYTHON} for its version: ${(version.stderr ?? '').trim()}`);
  mkdirSync(join(REPO_ROOT, '.cache'), { recursive: true });
  const wheels = mkdtempSync(join(REPO_ROOT, '.cache', 'wheels-st-'));
  try {
    const pipArgs = ['-m', 'pip', 'download', '--only-binary=:all:', '--retries', '0', '--python-version', version.stdout.trim(), '-d', wheels, ...SENTENCE_TRANSFORMERS_PINS];
    const download = spawnSync(pipPython, pipArgs, { cwd: REPO_ROOT, encoding: 'utf8' });
    if (download.error !== undefined || download.status !== 0) {
      const why = download.error?.message ?? (download.stderr ?? '').trim().split('\n').slice(-3).join('\n');
      throw new StepError(`${pipPython} ${pipArgs.join(' ')} failed: ${why}\n(set KILN_PIP_PYTHON to a python3 whose pip can reach an index with these wheels)`);
    }
    const files = readdirSync(wheels).filter((name) => name.endsWith('.whl')).map((name) => join(wheels, name));
    rmSync(pylib, { recursive: true, force: true });
    const unpack = python(['-c', UNPACK_WHEELS, pylib, ...files]);
    if (unpack.status !== 0) throw new StepError(`unpacking ${files.length} wheels into ${rel(pylib)} failed: ${(unpack.stderr ?? '').trim()}`);
    const probe = python(['-c', 'import sentence_transformers, transformers, torch; print(sentence_transformers.__version__, transformers.__version__, torch.__version__)'], { env: { ...process.env, PYTHONPATH: pylib } });
    if (probe.status !== 0) {
      throw new StepError(`${files.length} wheels were unpacked into ${rel(pylib)} but ${PYTHON} cannot import sentence_transformers: ${(probe.stderr ?? '').trim().split('\n').pop()}`);
    }
    writeFileSync(marker, pins);
    return `${rel(pylib)} was missing: unpacked ${files.length} wheels (sentence-transformers, transformers, torch ${probe.stdout.trim().split(' ').pop()}) into it`;
  } finally {
    rmSync(wheels, { recursive: true, force: true });
  }
}

const STEPS = [
  ['reference cases', referenceCases],
  ['python safetensors', pythonSafetensors],
  ['python sentence-transformers', pythonSentenceTransformers],
];

/** Runs every step, or only those named on the command line (`node test/reference/ensure.mjs 'python sentence-transformers'`). */
function main() {
  const only = process.argv.slice(2);
  const unknown = only.filter((name) => !STEPS.some(([known]) => known === name));
  if (unknown.length > 0) {
    console.error(`refs: no step named ${unknown.join(', ')}; the steps are: ${STEPS.map(([known]) => known).join(', ')}`);
    process.exit(2);
  }
  for (const [name, step] of STEPS.filter(([known]) => only.length === 0 || only.includes(known))) {
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
