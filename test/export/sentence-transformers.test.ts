/**
 * `kiln export --format sentence-transformers`: tiny random two-tower runs (mean pooling with a
 * cosine head and prompts; cls pooling with a dot head; last-token pooling) exported, then loaded
 * the ways a user would, each compared with Kiln's own embedding of the same texts (the eager
 * model, doc side, as `kiln embed` computes it):
 *   - Python sentence-transformers (with transformers and torch 2 from .cache/pylib-st, Hub off):
 *     max |Δ| ≤ 1e-5, every prompt_name equal to Kiln's input type;
 *   - onnxruntime-node on onnx/model.onnx, pooled and normalised: max |Δ| ≤ 1e-5;
 *   - transformers.js' feature-extraction pipeline from the local directory: max |Δ| ≤ 1e-4;
 *   - Kiln's own Hugging Face import, which must read the directory back unchanged.
 * Plus the files themselves (onnx.checker included) and the models this format cannot express,
 * which exit 2 with the reason.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { manualSeed, saveSafetensors, tidy } from '../../src/engine/index.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { ModelEmbedder } from '../../src/eval/embedder.js';
import { ExportInputError, loadExportableRun } from '../../src/export/export.js';
import { embedWithOnnx, promptPrefixes, writeSentenceTransformersExport, type SentenceTransformersExport } from '../../src/export/sentence-transformers.js';
import { disposeCheckpoint, loadHuggingFaceCheckpoint, MaskedLanguageModel } from '../../src/models/index.js';
import { kiln } from '../helpers/cli.js';
import { REPO_ROOT, runPython, runPythonAsync, SENTENCE_TRANSFORMERS_PYLIB } from '../helpers/python.js';
import { DATA_ROOT } from '../data/root.js';
import { tinyEncoder, tinyRun, VOCAB_PATH, type TinyRunOptions } from '../helpers/exported-model.js';

/** Real vacancy titles (JobBERT) and edge cases: one letter, accents, CJK, and one past max_seq_length (16) to check truncation. */
function texts(): string[] {
  const lines = readFileSync(join(DATA_ROOT, 'jobbert-titles', 'titles.csv'), 'utf8').split('\n').slice(1);
  const titles = lines.filter((l) => l.split(',').length === 3).map((l) => l.split(',')[1]!).filter((t) => t.trim() !== '');
  const step = Math.floor(titles.length / 20);
  return [...Array.from({ length: 20 }, (_, i) => titles[i * step]!), 'a', 'ÉLECTRICIEN / électricienne (H/F) — bâtiment', '数据工程师 data engineer', 'Senior Software Engineer (Java, Spring Boot) '.repeat(4)];
}

const TEXTS = texts();
const PROMPTS = { title: 'job title: {text}', occupation: 'occupation: {text}' };

interface Case {
  name: string;
  run: TinyRunOptions;
}

const CASES: Case[] = [
  { name: 'mean pooling, cosine head, prompts', run: { pooling: 'mean', head: 'cosine', prompts: PROMPTS } },
  { name: 'cls pooling, dot head', run: { pooling: 'cls', head: 'dot', seed: 11 } },
  { name: 'last-token pooling, cosine head', run: { pooling: 'last', head: 'cosine', seed: 13 } },
];

interface Exported {
  name: string;
  runDir: string;
  dir: string;
  result: SentenceTransformersExport;
  /** Kiln's embeddings of TEXTS per input type ('' = none: the text as is). */
  kiln: Map<string, Float32Array[]>;
}

interface PythonModel {
  dir: string;
  modules: string[];
  similarity_fn_name: string;
  max_seq_length: number;
  prompts: Record<string, string>;
  default_prompt_name: string | null;
  embeddings: Record<string, number[][]>;
  pooler_output_max_abs: number;
}

let exported: Exported[] = [];
let python: Promise<{ versions: Record<string, string>; models: PythonModel[] }>;

function maxAbsDiff(expected: readonly ArrayLike<number>[], actual: readonly ArrayLike<number>[]): number {
  expect(actual.length).toBe(expected.length);
  let max = 0;
  expected.forEach((row, i) => {
    expect(actual[i]!.length).toBe(row.length);
    for (let j = 0; j < row.length; j++) max = Math.max(max, Math.abs(row[j]! - actual[i]![j]!));
  });
  return max;
}

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-st-'));
  exported = [];
  for (const [index, c] of CASES.entries()) {
    const runDir = tinyRun(c.run);
    const { exportable, source } = loadExportableRun(runDir, 'sentence-transformers');
    try {
      const dir = join(root, `model-${index}`);
      const result = await writeSentenceTransformersExport(exportable, source, dir, { opset: 17 });
      if (exportable.kind !== 'two-tower') throw new Error('tinyRun made a cross-encoder');
      // What `kiln embed` computes: the doc side at its maximum length, with the input type's prompt.
      const embedder = new ModelEmbedder(exportable.model, WordPieceTokenizer.fromVocabFile(VOCAB_PATH), { maxLength: exportable.maxLength, batchSize: 64, precision: 'fp32', device: 'cpu' });
      const kilnVectors = new Map<string, Float32Array[]>();
      for (const type of ['', ...Object.keys(c.run.prompts ?? {})]) {
        const flat = tidy(() => (embedder.embed('doc', type === '' ? 'text' : type, TEXTS).contiguous().toTypedArray<'float32'>() as Float32Array).slice());
        const width = flat.length / TEXTS.length;
        kilnVectors.set(type, TEXTS.map((_, i) => flat.slice(i * width, (i + 1) * width)));
      }
      exported.push({ name: c.name, runDir, dir, result, kiln: kilnVectors });
    } finally {
      exportable.model.dispose();
    }
  }
  // Importing sentence-transformers takes many seconds: start it now, let the other tests run meanwhile.
  const request = { models: exported.map((e) => ({ dir: e.dir, texts: TEXTS, prompt_names: [null, ...e.kiln.keys()].filter((p) => p !== '') })) };
  python = runPythonAsync([join(REPO_ROOT, 'test', 'export', 'sentence_transformers_embed.py')], {
    pythonPath: SENTENCE_TRANSFORMERS_PYLIB,
    env: { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false', OMP_NUM_THREADS: '1' },
    input: JSON.stringify(request),
  }).then((stdout) => JSON.parse(stdout) as { versions: Record<string, string>; models: PythonModel[] });
  python.catch(() => {}); // awaited (and reported) by the test that uses it
});

describe('kiln export --format sentence-transformers', () => {
  it('writes a Hugging Face BERT and sentence-transformers directory that onnx.checker accepts', () => {
    const [withPrompts, dot] = exported as [Exported, Exported, Exported];
    const dir = withPrompts.dir;
    const files = (sub = ''): string[] => readdirSync(join(dir, sub)).sort();
    expect(files()).toEqual(
      ['1_Pooling', 'README.md', 'config.json', 'config_sentence_transformers.json', 'model.safetensors', 'modules.json', 'onnx', 'sentence_bert_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'].sort(),
    );
    const json = (file: string, at = dir): Record<string, unknown> => JSON.parse(readFileSync(join(at, file), 'utf8')) as Record<string, unknown>;
    const encoder = tinyEncoder();
    expect(json('config.json')).toMatchObject({
      architectures: ['BertModel'], model_type: 'bert', vocab_size: encoder.vocabSize, hidden_size: encoder.hiddenSize, num_hidden_layers: encoder.numLayers,
      num_attention_heads: encoder.numHeads, intermediate_size: encoder.intermediateSize, hidden_act: 'gelu', max_position_embeddings: encoder.maxPositions,
      type_vocab_size: encoder.typeVocabSize, layer_norm_eps: encoder.layerNormEps, pad_token_id: encoder.padId, position_embedding_type: 'absolute',
    });
    expect((json('modules.json') as unknown as Array<{ type: string; path: string }>).map((m) => [m.type, m.path])).toEqual([
      ['sentence_transformers.models.Transformer', ''],
      ['sentence_transformers.models.Pooling', '1_Pooling'],
      ['sentence_transformers.models.Normalize', '2_Normalize'],
    ]);
    expect((json('modules.json', dot.dir) as unknown as unknown[]).length).toBe(2); // the dot head does not normalise
    expect(json('1_Pooling/config.json')).toMatchObject({ word_embedding_dimension: 32, pooling_mode_mean_tokens: true, pooling_mode_cls_token: false });
    expect(json('1_Pooling/config.json', dot.dir)).toMatchObject({ pooling_mode_mean_tokens: false, pooling_mode_cls_token: true });
    expect(json('sentence_bert_config.json')).toEqual({ max_seq_length: 16, do_lower_case: false });
    expect(json('config_sentence_transformers.json')).toMatchObject({ prompts: { title: 'job title: ', occupation: 'occupation: ' }, default_prompt_name: null, similarity_fn_name: 'cosine' });
    expect(json('config_sentence_transformers.json', dot.dir)).toMatchObject({ prompts: {}, similarity_fn_name: 'dot' });
    expect(json('tokenizer_config.json')).toMatchObject({ tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 16, cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]' });
    expect(json('tokenizer.json')).toMatchObject({ truncation: { max_length: 16 }, normalizer: { type: 'BertNormalizer', lowercase: true }, model: { type: 'WordPiece' } });
    expect(readFileSync(join(dir, 'vocab.txt'), 'utf8')).toBe(readFileSync(VOCAB_PATH, 'utf8'));
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(readme).toMatch(/^---\nlibrary_name: sentence-transformers\n/);
    expect(readme).toContain('prompt_name="title"');
    expect(readme).toContain(withPrompts.result.modelId);

    // model.safetensors: BertModel's names (the ones Hugging Face's import maps), plus the zero pooler.
    const safetensors = readFileSync(join(dir, 'model.safetensors'));
    const header = JSON.parse(safetensors.subarray(8, 8 + Number(safetensors.readBigUInt64LE(0))).toString('utf8')) as Record<string, unknown>;
    expect(header.__metadata__).toMatchObject({ format: 'pt' });
    expect(Object.keys(header)).toEqual(expect.arrayContaining(['embeddings.word_embeddings.weight', 'embeddings.token_type_embeddings.weight', 'encoder.layer.1.attention.self.query.weight', 'encoder.layer.1.output.LayerNorm.bias', 'pooler.dense.weight']));

    const check = runPython([
      '-c',
      'import onnx, sys\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint([i.name for i in m.graph.input], [o.name for o in m.graph.output], [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim])',
      join(dir, 'onnx', 'model.onnx'),
    ]).trim();
    expect(check).toBe("['input_ids', 'attention_mask', 'token_type_ids'] ['last_hidden_state'] ['batch', 'sequence', 32]");
  });

  it("is read back unchanged by Kiln's own Hugging Face import", () => {
    const [withPrompts] = exported as [Exported];
    const checkpoint = loadHuggingFaceCheckpoint(withPrompts.dir);
    const { exportable } = loadExportableRun(withPrompts.runDir);
    try {
      expect(checkpoint.encoder).toEqual(tinyEncoder());
      expect({ pooling: checkpoint.pooling, normalize: checkpoint.normalize, maxSeqLength: checkpoint.maxSeqLength }).toEqual({ pooling: 'mean', normalize: true, maxSeqLength: 16 });
      if (exportable.kind !== 'two-tower') throw new Error('expected a two-tower run');
      for (const [name, parameter] of exportable.model.docEncoder.namedParameters()) {
        const read = checkpoint.weights.get(name);
        expect(read, name).toBeDefined();
        expect(tidy(() => read!.sub(parameter).abs().max().item()), name).toBe(0);
      }
    } finally {
      disposeCheckpoint(checkpoint);
      exportable.model.dispose();
    }
  });

  it("onnxruntime: onnx/model.onnx, pooled (and normalised) as the model pools, gives Kiln's embeddings", async () => {
    for (const e of exported) {
      for (const [type, expected] of e.kiln) {
        const actual = await embedWithOnnx(e.dir, TEXTS, { prompt: e.result.prompts[type], pooling: e.result.pooling, normalize: e.result.normalized, maxSeqLength: e.result.maxSeqLength });
        const diff = maxAbsDiff(expected, actual);
        console.log(`onnxruntime  ${e.name}, prompt '${type}': max |Δ| ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  it("transformers.js: pipeline('feature-extraction') from the local directory gives Kiln's embeddings", async () => {
    const { env, pipeline } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    const pooling = { mean: 'mean', cls: 'cls', last: 'last_token' } as const;
    // transformers.js 4.3 truncates after adding [CLS]/[SEP], cutting off the final [SEP]
    // (tokenization_utils.js, truncateHelper), where sentence-transformers and Kiln keep it: only
    // texts within max_seq_length compare.
    const tokenizer = WordPieceTokenizer.fromVocabFile(VOCAB_PATH);
    for (const e of exported) {
      env.localModelPath = join(e.dir, '..');
      const extractor = await pipeline('feature-extraction', e.dir.split('/').pop()!, { dtype: 'fp32' });
      try {
        for (const [type, expected] of e.kiln) {
          const prefix = e.result.prompts[type] ?? '';
          const fits = TEXTS.map((t) => tokenizer.pieceIds(prefix + t).length + 2 <= e.result.maxSeqLength);
          expect(fits.filter(Boolean).length).toBeGreaterThan(15);
          const inputs = TEXTS.filter((_, i) => fits[i]).map((t) => prefix + t);
          const options = { pooling: pooling[e.result.pooling], normalize: e.result.normalized };
          // Its last_token pooling reads the batch's last position, padding or not: one text per call.
          const vectors =
            e.result.pooling === 'last'
              ? await Promise.all(inputs.map(async (text) => ((await extractor(text, options)).tolist() as number[][])[0]!))
              : ((await extractor(inputs, options)).tolist() as number[][]);
          const diff = maxAbsDiff(expected.filter((_, i) => fits[i]), vectors);
          console.log(`transformers.js  ${e.name}, prompt '${type}': max |Δ| ${diff.toExponential(2)}`);
          expect(diff).toBeLessThanOrEqual(1e-4);
        }
      } finally {
        await extractor.dispose();
      }
    }
  });

  it('the CLI writes the directory after a parity check of onnx/model.onnx', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kiln-st-cli-')), 'model');
    const r = kiln(['export', '--run', exported[0]!.runDir, '--format', 'sentence-transformers', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^exported kiln-run-\w+@[0-9a-f]{12} \(sentence-transformers: mean pooling, normalised, max_seq_length 16, prompts title, occupation\) to /);
    expect(r.stderr).toMatch(/parity of onnx\/model\.onnx \(built-in texts .*\): 24 outputs, max \|Δ\| \S+ → pass/);
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toMatch(/## Checks\n\n`onnx\/model\.onnx` against Kiln's eager model on 24 built-in texts/);
  });

  it('models sentence-transformers cannot express exit 2 with the reason, and nothing is written', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kiln-st-bad-')), 'model');
    const separate = kiln(['export', '--run', tinyRun({ towers: 'separate' }), '--format', 'sentence-transformers', '--out', out]);
    expect(separate.status).toBe(2);
    expect(separate.stderr.trim().split('\n')).toHaveLength(1);
    expect(separate.stderr).toMatch(/cannot export as sentence-transformers: the model has separate query and doc towers \(towers: separate\)/);
    expect(readdirSync(join(out, '..'))).toEqual([]);

    // The other reasons, in-process.
    const reasonFor = async (runDir: string): Promise<string> => {
      try {
        const { exportable, source } = loadExportableRun(runDir, 'sentence-transformers');
        try {
          await writeSentenceTransformersExport(exportable, source, out, { opset: 17 });
        } finally {
          exportable.model.dispose();
        }
      } catch (error) {
        expect(error).toBeInstanceOf(ExportInputError);
        return (error as Error).message;
      }
      throw new Error(`${runDir} exported`);
    };
    expect(await reasonFor(tinyRun({ head: 'hadamard_mlp' }))).toMatch(/hadamard_mlp head scores a pair with an MLP/);
    expect(await reasonFor(tinyRun({ kind: 'cross-encoder' }))).toMatch(/a cross-encoder scores \(query, doc\) pairs jointly and has no per-text embedding/);
    expect(await reasonFor(tinyRun({ prompts: { title: 'title: {text} (job)' } }))).toMatch(/prompt 'title' is "title: \{text\} \(job\)", which is not a prefix/);
    expect(await reasonFor(maskedLmRun())).toMatch(/a masked language model \(task: mlm\) has no trained pooling or embedding/);
    expect(readdirSync(join(out, '..'))).toEqual([]);
    expect(() => promptPrefixes({ a: 'no text here' })).toThrow(/must end with \{text\}/);
    expect(() => promptPrefixes({ a: '{text} {text}' })).toThrow(/contain it once/);
  });

  // Last: the Python process started in beforeAll has had the other tests' time to import.
  it("sentence-transformers (Python) loads the directory offline and gives Kiln's embeddings, prompt_name by input type", async () => {
    const { versions, models } = await python;
    console.log(`python: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const [i, e] of exported.entries()) {
      const st = models[i]!;
      expect(st.dir).toBe(e.dir);
      expect(st.modules).toEqual(e.result.normalized ? ['Transformer', 'Pooling', 'Normalize'] : ['Transformer', 'Pooling']);
      expect(st.similarity_fn_name).toBe(e.result.normalized ? 'cosine' : 'dot');
      expect(st.max_seq_length).toBe(16);
      expect(st.default_prompt_name).toBeNull();
      expect(st.prompts).toMatchObject(e.result.prompts);
      expect(st.pooler_output_max_abs).toBe(0);
      for (const [type, expected] of e.kiln) {
        const diff = maxAbsDiff(expected, st.embeddings[type]!);
        console.log(`sentence-transformers  ${e.name}, prompt_name '${type || 'none'}': max |Δ| ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(1e-5);
      }
    }
  }, 180_000); // the import alone is 10-30 s on a busy 2-core machine
});

/** A run directory holding a random tiny masked language model (task: mlm). */
function maskedLmRun(): string {
  manualSeed(5);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-run-'));
  const model = new MaskedLanguageModel({ encoder: tinyEncoder() });
  saveSafetensors(join(dir, 'model.safetensors'), model.stateDict());
  model.dispose();
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ kind: 'masked-lm', encoder: tinyEncoder(), maxLength: { sequence: 32 } }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(WordPieceTokenizer.fromVocabFile(VOCAB_PATH).toJSON()));
  return dir;
}
