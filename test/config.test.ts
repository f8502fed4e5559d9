import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse as parseYaml } from 'yaml';

import {
  ConfigError,
  configHelpText,
  configReference,
  configSchema,
  loadConfig,
  loadResolvedRunConfig,
  parseConfigText,
  parseKeyPath,
} from '../src/config/index.js';
import { KILN_VERSION } from '../src/version.js';
import { cpuBf16Instruction } from '../src/engine/runtime.js';
import { BASE_CONFIG } from './helpers/config-base.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

// Line numbers below refer to this text (test/helpers/config-base.ts).
const BASE = BASE_CONFIG;

/** The problems a config text (and overrides) produce; fails the test if it is valid. */
function problems(text: string, overrides: string[] = []): string[] {
  try {
    parseConfigText(text, 't.yaml', overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.message).toBe(e.problems.join('\n'));
    return e.problems;
  }
  throw new Error('expected a ConfigError');
}

/** BASE with one exact substring replaced (the substring must occur). */
function edit(from: string, to: string, text = BASE): string {
  expect(text).toContain(from);
  return text.replace(from, to);
}

describe('valid configs', () => {
  it('parse with every default filled in', () => {
    const { config, sourcePath } = parseConfigText(BASE, 't.yaml');
    expect(sourcePath).toBe('t.yaml');
    expect(config.name).toBe('unit-test');
    expect(config.seed).toBe(42);
    expect(config.train).toMatchObject({ steps: 100, lr: 0.001, batch_size: 32, betas: [0.9, 0.999], clip_grad_norm: 1, precision: 'fp32', threads: 'auto', early_stopping: null });
    // Recipe options get their recipe's defaults.
    expect(config.data.train[0]).toEqual({ recipe: 'esco-occupations', options: { include_description: true, include_hidden: false, description_query_type: 'description' }, weight: 1, exclude_eval_queries: false });
    expect(config.data.train[1]).toEqual({ recipe: 'esco-skills', options: { include_description: true, include_hidden: false, description_query_type: 'sentence' }, weight: 1, exclude_eval_queries: false });
    expect(config.data.hard_negatives).toEqual({ k: 0, refresh_every: 500, start_step: 0 });
    expect(config.model).toMatchObject({ preset: 'bert-tiny', pooling: 'mean', prompts: {}, head: { type: 'cosine', mlp_hidden: 256 } });
    expect(config.loss).toEqual([{ name: 'infonce', weight: 1, temperature: 0.05, learnable_temperature: false, min_temperature: 0.01, symmetric: false, gather_negatives: false }]);
  });

  it('the resolved YAML has a header and round-trips to the same config', () => {
    const overrides = ['train.lr=3e-4', 'model.prompts={title: "t: {text}"}'];
    const { config, resolvedYaml } = parseConfigText(BASE, 't.yaml', overrides);
    const header = resolvedYaml.split('\n').filter((l) => l.startsWith('#'));
    expect(header.join('\n')).toContain(`kiln ${KILN_VERSION}`);
    expect(header.join('\n')).toContain('source: t.yaml');
    expect(header.join('\n')).toContain('--set train.lr=3e-4 --set model.prompts={title: "t: {text}"}');
    expect(parseYaml(resolvedYaml)).toEqual(config);
    const again = parseConfigText(resolvedYaml, 'config.yaml');
    expect(again.config).toEqual(config);
    // Every key is written out, defaults included.
    expect(resolvedYaml).toMatch(/^ {2}clip_grad_norm: 1$/m);
    expect(resolvedYaml).toMatch(/^ {2}early_stopping: null$/m);
    expect(resolvedYaml).toMatch(/^ {6}metrics: \[mrr, recall@5\]$/m);
    expect(resolvedYaml).toMatch(/^ {2}- name: infonce\n {4}weight: 1\n/m);
  });

  it('configs/*.yaml all validate', () => {
    const dir = join(REPO, 'configs');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['tiny.yaml', 'twotower.yaml', 'skills-twotower.yaml']));
    for (const file of files) {
      const loaded = loadConfig(join(dir, file));
      expect(parseConfigText(loaded.resolvedYaml, file).config).toEqual(loaded.config);
    }
  });
});

describe('one message per problem, with file:line:col', () => {
  it('unknown key, with a suggestion, at the key', () => {
    expect(problems(edit('  lr: 0.001', '  lrr: 0.001'))).toEqual(["t.yaml:18:3: train.lrr: unknown key 'lrr' (did you mean 'lr'?)"]);
    expect(problems(edit('name: unit-test\n', 'name: unit-test\nsed: 1\n'))).toEqual(["t.yaml:2:1: sed: unknown key 'sed' (did you mean 'seed'?)"]);
    expect(problems(edit('  lr: 0.001', '  learning_rate: 0.001'))).toEqual(["t.yaml:18:3: train.learning_rate: unknown key 'learning_rate'"]);
  });

  it('wrong type', () => {
    expect(problems(edit('lr: 0.001', 'lr: fast'))).toEqual(['t.yaml:18:7: train.lr: expected a number > 0 and <= 1, got "fast"']);
    expect(problems(edit('steps: 100', 'steps: 1.5'))).toEqual(['t.yaml:17:10: train.steps: expected an integer >= 1, got 1.5']);
    expect(problems(edit('  - name: infonce', '  - name: infonce\n    symmetric: "yes"'))).toEqual(['t.yaml:15:16: loss[0].symmetric: expected true or false, got "yes"']);
  });

  it('out of range', () => {
    expect(problems(edit('steps: 100', 'steps: 0'))).toEqual(['t.yaml:17:10: train.steps: expected an integer >= 1, got 0']);
    expect(problems(edit('temperature: 0.05', 'temperature: -1'))).toEqual(['t.yaml:15:18: loss[0].temperature: expected a number > 0, got -1']);
    expect(problems(edit('  lr: 0.001', '  lr: 0.001\n  betas: [0.9, 1]'))).toEqual(['t.yaml:19:16: train.betas[1]: expected a number >= 0 and < 1, got 1']);
  });

  it('enum', () => {
    expect(problems(edit('  lr: 0.001', '  lr: 0.001\n  precision: fp16'))).toEqual(['t.yaml:19:14: train.precision: expected one of: fp32, bf16, auto, got "fp16"']);
    expect(problems(edit('preset: bert-tiny', 'preset: bert-tinyy'))).toEqual([
      't.yaml:12:11: model.preset: expected one of: bert-tiny, bert-mini, bert-small, bert-medium, bert-base, got "bert-tinyy" (did you mean \'bert-tiny\'?)',
    ]);
  });

  it('unknown loss name', () => {
    expect(problems(edit('- name: infonce', '- name: infonc'))).toEqual(['t.yaml:14:11: loss[0].name: unknown name "infonc"; expected one of: bce, infonce, vp_matrix, masked_lm, embedding_mse, similarity_kl, margin_mse, hidden_mse, attention_kl (did you mean \'infonce\'?)']);
  });

  it('missing required keys (located at the parent key when there is one)', () => {
    expect(problems(edit('  steps: 100\n', ''))).toEqual(['t.yaml:16:1: train.steps: required key is missing; expected an integer >= 1']);
    expect(problems(edit('name: unit-test\n', ''))).toEqual(['t.yaml: name: required key is missing; expected a string matching /^[A-Za-z0-9._-]+$/']);
    expect(problems(edit('  preset: bert-tiny', '  hidden_size: 64'))).toEqual([
      't.yaml:11:1: model.num_layers: required when model.preset is not set (presets: bert-tiny, bert-mini, bert-small, bert-medium, bert-base)',
      't.yaml:11:1: model.num_heads: required when model.preset is not set (presets: bert-tiny, bert-mini, bert-small, bert-medium, bert-base)',
      't.yaml:11:1: model.intermediate_size: required when model.preset is not set (presets: bert-tiny, bert-mini, bert-small, bert-medium, bert-base)',
    ]);
  });

  it("a recipe's options are checked against that recipe's schema", () => {
    expect(problems(edit('{include_description: true}', '{include_description: "no"}'))).toEqual([
      't.yaml:5:38: data.train[0].options.include_description: expected true or false, got "no"',
    ]);
    expect(problems(edit('{include_description: true}', '{include_descriptions: true}'))).toEqual([
      "t.yaml:5:17: data.train[0].options.include_descriptions: unknown key 'include_descriptions' (did you mean 'include_description'?)",
    ]);
    expect(problems(edit('      metrics: [mrr, recall@5]', '      options: {split: train}\n      metrics: [mrr, recall@5]'))).toEqual([
      't.yaml:10:24: data.eval[0].options.split: expected one of: validation, test, got "train"',
    ]);
    // A required recipe option, with no options written: located at the list item.
    expect(problems(edit('recipe: jobbert-titles', 'recipe: skill-extraction'))).toEqual([
      't.yaml:8:7: data.eval[0].options.subset: required key is missing; expected one of: tech, house, techwolf',
    ]);
  });

  it('unknown recipe, and a recipe of the wrong kind', () => {
    expect(problems(edit('recipe: esco-skills', 'recipe: esco-skill'))).toEqual([
      "t.yaml:6:15: data.train[1].recipe: unknown recipe 'esco-skill'; expected one of: esco-occupations, esco-skills, onet-titles, jobbert-titles, skill-extraction, skillspan, skillspan-pairs, skillspan-weak, stsb, domain-corpus, pairs, triplets, scored-pairs, retrieval (did you mean 'esco-skills'?)",
    ]);
    expect(problems(edit('recipe: esco-skills', 'recipe: skillspan'))).toEqual([
      "t.yaml:6:15: data.train[1].recipe: recipe 'skillspan' yields texts; expected a recipe that yields pairs or corpus or retrieval or scored-pairs",
    ]);
  });

  it('bad metric name', () => {
    const got = problems(edit('[mrr, recall@5]', '[mrr, recal@5]'));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^t\.yaml:10:22: data\.eval\[0\]\.metrics\[1\]: unknown metric "recal@5": no metric called "recal"; expected one of: recall@K, .*pearson/);
  });

  it('early-stopping metric that is not evaluated', () => {
    const text = edit('  lr: 0.001', '  lr: 0.001\n  eval_every: 10\n  early_stopping: {metric: jobbert/ndcg@10}');
    expect(problems(text)).toEqual([
      "t.yaml:20:28: train.early_stopping.metric: 'jobbert/ndcg@10' is not an evaluated metric; expected <eval name>/<metric> from data.eval (jobbert)",
    ]);
    expect(() => parseConfigText(edit('ndcg@10', 'recall@5', text), 't.yaml')).not.toThrow();
    expect(problems(edit('  eval_every: 10\n', '', edit('ndcg@10', 'mrr', text)))).toEqual([
      't.yaml:16:1: train.eval_every: early stopping needs periodic evaluation: set eval_every > 0',
    ]);
  });

  it('cross-field: warm-up longer than the run', () => {
    expect(problems(edit('  lr: 0.001', '  lr: 0.001\n  warmup_steps: 200'))).toEqual(['t.yaml:19:17: train.warmup_steps: warm-up (200) is longer than train.steps (100)']);
  });

  it('reports every problem together, in file order', () => {
    const text = edit('  lr: 0.001', '  lrr: 0.001\n  precision: fp16', edit('temperature: 0.05', 'temperature: 0', edit('preset: bert-tiny', 'preset: huge', edit('name: unit-test', 'name: unit test'))));
    expect(problems(text)).toEqual([
      't.yaml:1:7: name: expected letters, digits, ., _ and - only, got "unit test"',
      't.yaml:12:11: model.preset: expected one of: bert-tiny, bert-mini, bert-small, bert-medium, bert-base, got "huge"',
      't.yaml:15:18: loss[0].temperature: expected a number > 0, got 0',
      "t.yaml:18:3: train.lrr: unknown key 'lrr' (did you mean 'lr'?)",
      't.yaml:19:14: train.precision: expected one of: fp32, bf16, auto, got "fp16"',
    ]);
  });

  it('YAML syntax errors and duplicate keys', () => {
    expect(problems(edit('metrics: [mrr, recall@5]', 'metrics: [mrr, recall@5'))).toEqual([expect.stringMatching(/^t\.yaml:11:1: YAML syntax error: /)]);
    const dup = problems(edit('  lr: 0.001', '  lr: 0.001\n  steps: 3'));
    expect(dup).toEqual([expect.stringMatching(/^t\.yaml:19:3: YAML syntax error: Map keys must be unique/)]);
  });

  it('an empty file or a non-mapping', () => {
    expect(problems('')).toEqual(['t.yaml: (top level): expected a mapping, got null']);
    expect(problems('- 1\n')).toEqual(['t.yaml:1:1: (top level): expected a mapping, got [1]']);
  });
});

describe('--set overrides', () => {
  const parse = (overrides: string[]) => parseConfigText(BASE, 't.yaml', overrides).config;

  it('numbers, null, booleans, strings', () => {
    const c = parse(['train.lr=3e-4', 'train.clip_grad_norm=null', 'train.mask_same_group=false', 'train.precision=bf16', 'seed=7']);
    expect(c.train.lr).toBe(3e-4);
    expect(c.train.clip_grad_norm).toBeNull();
    expect(c.train.mask_same_group).toBe(false);
    expect(c.train.precision).toBe('bf16');
    expect(c.seed).toBe(7);
  });

  it('nested flow values, new keys and list items by [i] or .i', () => {
    const c = parse(['model.prompts={title: "t: {text}"}', 'data.eval[0].max_queries=100', 'data.train.1.options.include_description=false', 'data.hard_negatives.k=4', 'data.eval[0].metrics=[mrr, ndcg@10]']);
    expect(c.model.prompts).toEqual({ title: 't: {text}' });
    expect(c.data.eval[0]?.max_queries).toBe(100);
    expect(c.data.train[1]?.options).toMatchObject({ include_description: false });
    expect(c.data.hard_negatives.k).toBe(4);
    expect(c.data.eval[0]?.metrics).toEqual(['mrr', 'ndcg@10']);
  });

  it('appending a list item, and later overrides win', () => {
    const c = parse(['loss[1]={name: bce, weight: 0.5}', 'train.lr=0.1', 'train.lr=0.2']);
    expect(c.loss.map((l) => l.name)).toEqual(['infonce', 'bce']);
    expect(c.train.lr).toBe(0.2);
  });

  it('errors in overridden values name the override instead of a line', () => {
    expect(problems(BASE, ['train.lr=-1'])).toEqual(['t.yaml: train.lr: expected a number > 0 and <= 1, got -1 (from --set train.lr=-1)']);
    expect(problems(BASE, ['train.lrr=1'])).toEqual(["t.yaml: train.lrr: unknown key 'lrr' (did you mean 'lr'?) (from --set train.lrr=1)"]);
    expect(problems(BASE, ['model.prompts={title: "t:"}'])).toEqual(['t.yaml: model.prompts.title: a prompt template must contain {text}, got "t:" (from --set model.prompts={title: "t:"})']);
    expect(problems(BASE, ['trian.lr=1'])).toEqual(["t.yaml: trian: unknown key 'trian' (did you mean 'train'?) (from --set trian.lr=1)"]);
    expect(problems(BASE, ['train={lr: 0.1}'])).toEqual(['t.yaml: train.steps: required key is missing; expected an integer >= 1 (from --set train={lr: 0.1})']);
    // A file error next to an override error: each located its own way.
    expect(problems(edit('steps: 100', 'steps: 0'), ['data.eval.0.max_queries=0'])).toEqual([
      't.yaml:17:10: train.steps: expected an integer >= 1, got 0',
      't.yaml: data.eval[0].max_queries: expected an integer >= 1, got 0 (from --set data.eval.0.max_queries=0)',
    ]);
  });

  it('bad override syntax is an error naming the override', () => {
    expect(problems(BASE, ['train.lr'])).toEqual(['t.yaml: --set train.lr: expected key.path=value']);
    expect(problems(BASE, ['train..lr=1', 'train.lr[x]=1'])).toEqual([
      "t.yaml: --set train..lr=1: bad key path 'train..lr'; expected dotted keys with optional [i] list indices, e.g. train.lr or data.eval[0].max_queries",
      "t.yaml: --set train.lr[x]=1: bad key path 'train.lr[x]'; expected dotted keys with optional [i] list indices, e.g. train.lr or data.eval[0].max_queries",
    ]);
    expect(problems(BASE, ['data.eval[3].max_queries=1'])).toEqual(['t.yaml: --set data.eval[3].max_queries=1: data.eval has 1 item(s); index 3 is out of range']);
    expect(problems(BASE, ['train.lr.x=1'])).toEqual(["t.yaml: --set train.lr.x=1: train.lr is 0.001, not a mapping or list, so it has no 'x'"]);
    expect(problems(BASE, ['train[0]=1'])).toEqual(['t.yaml: --set train[0]=1: train is a mapping, not a list']);
    expect(problems(BASE, ['model.prompts={title: '])).toEqual([expect.stringMatching(/^t\.yaml: --set model\.prompts=\{title: : cannot parse the value as YAML: /)]);
  });

  it('key paths', () => {
    expect(parseKeyPath('data.eval[0].max_queries')).toEqual([
      { key: 'data', index: false },
      { key: 'eval', index: false },
      { key: '0', index: true },
      { key: 'max_queries', index: false },
    ]);
    expect(parseKeyPath('[0]')).toBeUndefined();
    expect(parseKeyPath('a.')).toBeUndefined();
    expect(parseKeyPath('')).toBeUndefined();
  });
});

describe('loadConfig', () => {
  it('reads a file, writes nothing, and names a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'));
    const cwd = mkdtempSync(join(tmpdir(), 'kiln-cwd-'));
    const previous = process.cwd();
    try {
      const file = join(dir, 'run.yaml');
      writeFileSync(file, BASE);
      process.chdir(cwd);
      const loaded = loadConfig(file, ['train.lr=0.01']);
      expect(loaded.sourcePath).toBe(file);
      expect(loaded.config.train.lr).toBe(0.01);
      expect(() => loadConfig(file, ['train.lr=2'])).toThrow(ConfigError);
      expect(readdirSync(dir)).toEqual(['run.yaml']);
      expect(readFileSync(file, 'utf8')).toBe(BASE);
      expect(readdirSync(cwd)).toEqual([]);

      const missing = join(dir, 'nope.yaml');
      expect(() => loadConfig(missing)).toThrow(new ConfigError([`${missing}: cannot read the config file: no such file`]));
      expect(readdirSync(dir)).toEqual(['run.yaml']);
    } finally {
      process.chdir(previous);
      rmSync(dir, { recursive: true, force: true });
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it("loadResolvedRunConfig reads a run's config.yaml back unchanged", () => {
    const run = mkdtempSync(join(tmpdir(), 'kiln-run-'));
    try {
      const saved = parseConfigText(BASE, 't.yaml', ['train.lr=0.01']);
      mkdirSync(run, { recursive: true });
      writeFileSync(join(run, 'config.yaml'), saved.resolvedYaml);
      const loaded = loadResolvedRunConfig(run);
      expect(loaded.config).toEqual(saved.config);
      expect(loaded.resolvedYaml).toBe(saved.resolvedYaml);
      expect(() => loadResolvedRunConfig(join(run, 'missing'))).toThrow(ConfigError);
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});

describe('generated reference', () => {
  it('help text has one line per key with type, default and description', () => {
    const help = configHelpText();
    expect(help).toMatch(/^ {2}train\.lr +number > 0 and <= 1 {2}\(default 0\.0005\) {2}Peak learning rate$/m);
    expect(help).toMatch(/^ {2}train\.steps +integer >= 1 {2}\(required\) {2}Optimizer steps$/m);
    expect(help).toMatch(/^ {2}loss\[name=infonce\]\.temperature +number > 0 {2}\(default 0\.05\)/m);
    expect(help).toMatch(/^Recipes: .*esco-occupations \(pairs\)/m);
  });

  it('docs/config.md is up to date (node --import tsx scripts/gen-config-docs.ts)', () => {
    const reference = configReference();
    expect(reference).toContain('| `lr` |'.replace('`lr`', '`train.lr`'));
    expect(reference).toContain('### `esco-occupations` (pairs)');
    expect(reference).toContain('### `infonce`');
    expect(readFileSync(join(REPO, 'docs', 'config.md'), 'utf8')).toBe(reference);
  });

  it('documents every key of the schema', () => {
    const reference = configReference();
    const shape = (configSchema as unknown as { shape: Record<string, unknown> }).shape;
    for (const key of Object.keys(shape)) expect(reference).toContain(`\`${key}`);
  });
});

describe('task:', () => {
  const MLM = `task: mlm
name: unit-mlm
data:
  train:
    - recipe: domain-corpus
model:
  preset: bert-tiny
train:
  steps: 10
`;

  it('defaults to twotower; mlm and cross-encoder fill in their own loss when loss: is left out', () => {
    expect(parseConfigText(BASE, 't.yaml').config.task).toBe('twotower');
    const mlm = parseConfigText(MLM, 't.yaml').config;
    expect(mlm.task).toBe('mlm');
    expect(mlm.loss).toEqual([{ name: 'masked_lm', weight: 1, label_smoothing: 0 }]);
    expect(mlm.mlm).toEqual({ probability: 0.15, whole_word: false, held_out: 512 });
    const ce = parseConfigText(edit('name: unit-test', 'task: cross-encoder\nname: unit-test', edit('loss:\n  - name: infonce\n    temperature: 0.05\n', '')), 't.yaml').config;
    expect(ce.loss).toMatchObject([{ name: 'bce', scale: 1, bias: 0, learnable_scale: false, learnable_bias: false }]);
    expect(ce.cross_encoder).toEqual({ negatives: { source: 'bm25', k: 3, pool: 30, random: 0, max_relative_score: null }, rerank: { first_stage: 'bm25', top_k: 50, max_queries: null, fusion: null }, residual: null });
  });

  it('a two-tower config without loss: is an error', () => {
    expect(problems(edit('loss:\n  - name: infonce\n    temperature: 0.05\n', ''))).toEqual(['t.yaml: loss: required for task twotower: a list of losses, e.g. [{name: infonce, temperature: 0.05}]']);
  });

  it('an unknown task lists the tasks', () => {
    expect(problems(`task: mlmm\n${BASE}`)).toEqual(['t.yaml:1:7: task: expected one of: twotower, mlm, cross-encoder, distill, got "mlmm" (did you mean \'mlm\'?)']);
  });

  it("a recipe of the wrong kind for the task names the recipe and what the task trains on", () => {
    expect(problems(edit('recipe: domain-corpus', 'recipe: esco-skills', MLM))).toEqual(["t.yaml:5:15: data.train[0].recipe: recipe 'esco-skills' yields pairs; task mlm trains on corpus (e.g. domain-corpus)"]);
    expect(problems(edit('recipe: esco-skills', 'recipe: domain-corpus'))).toEqual(["t.yaml:6:15: data.train[1].recipe: recipe 'domain-corpus' yields corpus; task twotower trains on pairs or retrieval or scored-pairs (e.g. esco-occupations)"]);
  });

  it("a loss that reads an input the task does not provide names the loss, the input and the task's losses", () => {
    expect(problems(`${MLM}loss:\n  - name: infonce\n`)).toEqual(["t.yaml:11:11: loss[0].name: loss 'infonce' reads scores, which task mlm does not provide; losses for mlm: masked_lm"]);
    expect(problems(edit('  - name: infonce\n    temperature: 0.05\n', '  - name: masked_lm\n'))).toEqual(["t.yaml:14:11: loss[0].name: loss 'masked_lm' reads tokens, which task twotower does not provide; losses for twotower: bce, infonce, vp_matrix"]);
  });

  it('a loss that needs a teacher, in a run without one, says where the teacher is set', () => {
    // A teacher's outputs outside task: distill: the loss is wrong for the task, and the message says how to get a teacher.
    expect(problems(edit('  - name: infonce\n    temperature: 0.05\n', '  - name: margin_mse\n'))).toEqual([
      "t.yaml:14:11: loss[0].name: loss 'margin_mse' reads teacher_scores, which task twotower does not provide (a teacher's outputs: use task: distill with distill.teacher); losses for twotower: bce, infonce, vp_matrix",
    ]);
    // A cross-encoder's teacher is the two-tower run that mines its negatives; BM25 has no such scores.
    const kl = edit('  - name: infonce\n    temperature: 0.05\n', '  - name: similarity_kl\n    student_temperature: 1\n');
    expect(problems(kl, ['task=cross-encoder'])).toEqual([
      "t.yaml:14:11: loss[0].name: loss 'similarity_kl' reads the scores of the two-tower run that mines the negatives, but cross_encoder.negatives.source is bm25; set it to run:<dir>",
    ]);
    // task: distill without distill.teacher: the teacher itself is required.
    expect(problems(BASE, ['task=distill'])).toEqual(['t.yaml: distill.teacher: required for task distill: a Kiln run (runs/<name>) or a Hugging Face BERT directory']);
  });

  it('train.device: cuda is checked against the machine the caller passes, and only then', () => {
    const noCuda = { cudaUnavailableReason: () => 'this libtorch (2.0) is built without CUDA', cpuBf16Instruction: () => null };
    const withCuda = { cudaUnavailableReason: () => null, cpuBf16Instruction: () => null };
    const cuda = edit('  steps: 100\n', '  steps: 100\n  device: cuda\n');
    expect(() => parseConfigText(cuda, 't.yaml', [], noCuda)).toThrow(new ConfigError(['t.yaml:18:11: train.device: cuda is not available here: this libtorch (2.0) is built without CUDA; use cpu']));
    expect(() => parseConfigText(BASE, 't.yaml', ['train.device=cuda'], noCuda)).toThrow(
      new ConfigError(['t.yaml: train.device: cuda is not available here: this libtorch (2.0) is built without CUDA; use cpu (from --set train.device=cuda)']),
    );
    expect(parseConfigText(cuda, 't.yaml', [], withCuda).config.train.device).toBe('cuda');
    // Without a machine (kiln export of a CUDA-trained run on a CPU machine) nothing is asked.
    expect(parseConfigText(cuda, 't.yaml').config.train.device).toBe('cuda');
    // A CPU config never asks about CUDA.
    expect(parseConfigText(BASE, 't.yaml', [], { cudaUnavailableReason: () => { throw new Error('asked about CUDA'); }, cpuBf16Instruction: () => null }).config.train.device).toBe('cpu');
  });

  it('train.precision: auto is bf16 on CUDA or a CPU with bf16 instructions, fp32 elsewhere, and the resolved config pins it', () => {
    const machine = (bf16: string | null) => ({ cudaUnavailableReason: () => null, cpuBf16Instruction: () => bf16 });
    const auto = ['train.precision=auto'];
    const avx512 = parseConfigText(BASE, 't.yaml', auto, machine('avx512_bf16'));
    expect(avx512.config.train.precision).toBe('bf16');
    expect(avx512.resolvedYaml).toMatch(/\n {2}precision: bf16\n/);
    expect(parseConfigText(BASE, 't.yaml', auto, machine(null)).config.train.precision).toBe('fp32');
    expect(parseConfigText(BASE, 't.yaml', [...auto, 'train.device=cuda'], machine(null)).config.train.precision).toBe('bf16');
    // An explicit precision is kept whatever the CPU.
    expect(parseConfigText(BASE, 't.yaml', ['train.precision=bf16'], machine(null)).config.train.precision).toBe('bf16');
    expect(parseConfigText(BASE, 't.yaml', [], machine('amx_bf16')).config.train.precision).toBe('fp32');
  });

  it("the CPU's bf16 instruction is read from /proc/cpuinfo's flags (x86) or Features (Arm)", () => {
    expect(cpuBf16Instruction('processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n')).toBe('avx512_bf16');
    expect(cpuBf16Instruction('flags\t\t: avx512f amx_bf16 amx_tile avx512_bf16\n')).toBe('amx_bf16');
    expect(cpuBf16Instruction('flags\t\t: fpu sse2 avx avx2 fma\n')).toBeNull();
    expect(cpuBf16Instruction('Features\t: fp asimd sve bf16 i8mm\n')).toBe('bf16');
    expect(cpuBf16Instruction('model name\t: bf16 lookalike\n')).toBeNull();
    expect(cpuBf16Instruction(null)).toBeNull();
  });

  it('cross_encoder sources are bm25 or run:<dir>', () => {
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.source=tfidf'])).toEqual(['t.yaml: cross_encoder.negatives.source: expected bm25 or run:<run directory>, got "tfidf" (from --set cross_encoder.negatives.source=tfidf)']);
  });

  it('cross_encoder.negatives.random counts among the k negatives', () => {
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.k=3', 'cross_encoder.negatives.random=4'])).toEqual([
      't.yaml: cross_encoder.negatives.random: random must be at most k (it counts the random ones among the k negatives), got 4 (from --set cross_encoder.negatives.random=4)',
    ]);
  });

  it("cross_encoder.negatives.max_relative_score needs a run's scores, and is a fraction in (0, 1]", () => {
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.max_relative_score=0.95'])).toEqual([
      "t.yaml: cross_encoder.negatives.max_relative_score: filters candidates by the mining run's scores, and BM25's are not on a model's scale; set source to run:<dir>, or remove it, got 0.95 (from --set cross_encoder.negatives.max_relative_score=0.95)",
    ]);
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.source=run:runs/teacher', 'cross_encoder.negatives.max_relative_score=1.5'])).toEqual([
      't.yaml: cross_encoder.negatives.max_relative_score: expected a number > 0 and <= 1 or null, got 1.5 (from --set cross_encoder.negatives.max_relative_score=1.5)',
    ]);
  });

  it('cross_encoder.residual corrects a run: negatives.source and rerank.first_stage must be runs, and τ positive', () => {
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.source=run:runs/teacher', 'cross_encoder.residual={temperature: 0.05}'])).toEqual([
      't.yaml: cross_encoder.residual: corrects the scores of the run that mines the negatives, so negatives.source and rerank.first_stage must both name that run (run:<dir>), not bm25 (from --set cross_encoder.residual={temperature: 0.05})',
    ]);
    expect(problems(BASE, ['task=cross-encoder', 'cross_encoder.negatives.source=run:runs/t', 'cross_encoder.rerank.first_stage=run:runs/t', 'cross_encoder.residual={temperature: 0}'])).toEqual([
      't.yaml: cross_encoder.residual.temperature: expected a number > 0, got 0 (from --set cross_encoder.residual={temperature: 0})',
    ]);
    const parsed = parseConfigText(BASE, 't.yaml', ['task=cross-encoder', 'cross_encoder.negatives.source=run:runs/t', 'cross_encoder.rerank.first_stage=run:runs/t', 'cross_encoder.residual={temperature: 0.05}']);
    expect(parsed.config.cross_encoder.residual).toEqual({ temperature: 0.05 });
  });
});
