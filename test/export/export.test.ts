/**
 * ONNX export: the graph run by onnxruntime-node against Kiln's eager forward pass on real
 * titles (fp32: max |Δ| ≤ 1e-4; int8: cosine ≥ 0.99 per vector), across poolings, heads,
 * tower layouts, opsets and the cross-encoder; onnx.checker (Debian's python3-onnx) on the
 * files; the model card; and the directory replaced atomically.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { ExportedModel } from '../../src/serve/exported-model.js';
import { loadExportableRun, exportModel } from '../../src/export/export.js';
import { checkParity, type ParityInputs } from '../../src/export/parity.js';
import { exportRun } from '../../src/export/run-export.js';
import { parseModelCard } from '../../src/export/card.js';
import { OnnxGraphBuilder } from '../../src/export/onnx-graph.js';
import type { GraphOperators } from '../../src/export/bert-graph.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { runPython } from '../helpers/python.js';
import { DATA_ROOT } from '../data/root.js';
import { exportRunTo, tinyRun, type TinyRunOptions } from '../helpers/exported-model.js';

/** Real vacancy titles (JobBERT), of many lengths, with a few edge cases. */
function realTitles(count: number): string[] {
  const lines = readFileSync(join(DATA_ROOT, 'jobbert-titles', 'titles.csv'), 'utf8').split('\n').slice(1);
  const titles = lines.filter((l) => l.split(',').length === 3).map((l) => l.split(',')[1]!).filter((t) => t.trim() !== '');
  const step = Math.floor(titles.length / count);
  return [...Array.from({ length: count - 3 }, (_, i) => titles[i * step]!), 'a', 'ÉLECTRICIEN / électricienne (H/F) — bâtiment', 'word '.repeat(80)];
}

const TITLES = realTitles(40);

function inputsFor(texts: readonly string[]): ParityInputs {
  return { query: { inputType: 'title', texts }, doc: { inputType: 'occupation', texts: [...texts].reverse() }, pairs: texts.map((t, i) => [t, texts[(i + 7) % texts.length]!] as const) };
}

async function parityOf(run: TinyRunOptions, exportOptions: { quantize?: 'none' | 'int8'; opset?: number; operators?: GraphOperators }) {
  const runDir = tinyRun(run);
  const dir = exportRunTo(runDir, exportOptions);
  const model = await ExportedModel.load(dir);
  const { exportable } = loadExportableRun(runDir);
  try {
    const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(dir, 'tokenizer.json'));
    return { report: await checkParity(exportable, model, tokenizer, inputsFor(TITLES)), dir, runDir };
  } finally {
    exportable.model.dispose();
    await model.release();
  }
}

function onnxCheck(path: string): string {
  return runPython(['-c', `import onnx, sys\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint("ok", m.ir_version, m.opset_import[0].version, [i.name for i in m.graph.input], [o.name for o in m.graph.output])`, path]).trim();
}

/** Each operator of the graph as `domain:op` (the default domain as `ai.onnx`), with its count. */
function operatorCounts(path: string): Record<string, number> {
  const script = `import onnx, sys, json, collections\nm = onnx.load(sys.argv[1])\nprint(json.dumps(collections.Counter((n.domain or "ai.onnx") + ":" + n.op_type for n in m.graph.node)))`;
  return JSON.parse(runPython(['-c', script, path])) as Record<string, number>;
}

describe('ONNX export parity with the eager model (onnxruntime-node)', () => {
  // onnxruntime: the fused contrib operators; onnx: standard operators only (the default).
  const cases: Array<[string, TinyRunOptions, number, GraphOperators]> = [
    ['two-tower shared, mean pooling, cosine head', { pooling: 'mean', head: 'cosine', prompts: { title: 'job title: {text}' } }, 17, 'onnxruntime'],
    ['two-tower shared, mean pooling, cosine head, standard operators', { pooling: 'mean', head: 'cosine', prompts: { title: 'job title: {text}' } }, 17, 'onnx'],
    ['two-tower shared, cls pooling, dot head, opset 13 (LayerNorm decomposed), standard operators', { pooling: 'cls', head: 'dot' }, 13, 'onnx'],
    ['two-tower shared, cls pooling, dot head, opset 13', { pooling: 'cls', head: 'dot' }, 13, 'onnxruntime'],
    ['two-tower shared, last-token pooling, opset 20 (Gelu op), standard operators', { pooling: 'last', head: 'cosine' }, 20, 'onnx'],
    ['two-tower separate towers, Hadamard-MLP head', { towers: 'separate', head: 'hadamard_mlp', pooling: 'mean' }, 17, 'onnxruntime'],
    ['cross-encoder, cls pooling', { kind: 'cross-encoder', pooling: 'cls' }, 17, 'onnxruntime'],
    ['cross-encoder, mean pooling, opset 14, standard operators', { kind: 'cross-encoder', pooling: 'mean' }, 14, 'onnx'],
  ];
  for (const [name, run, opset, operators] of cases) {
    it(`fp32 ${name}: max |Δ| ≤ 1e-4`, async () => {
      const { report, dir } = await parityOf(run, { opset, operators });
      const expectedOutputs = run.kind === 'cross-encoder' ? TITLES.length : 2 * TITLES.length;
      expect(report.outputs).toBe(expectedOutputs);
      expect(report.maxAbsDiff).toBeLessThanOrEqual(1e-4);
      expect(report.passed).toBe(true);
      if (run.kind !== 'cross-encoder') expect(report.minCosine).toBeGreaterThan(0.999999);
      // Debian's python3-onnx is 1.12, whose checker knows opsets up to 17 (IR version 8).
      const graph = join(dir, run.towers === 'separate' ? 'query.onnx' : 'model.onnx');
      if (opset <= 17) expect(onnxCheck(graph)).toMatch(new RegExp(`^ok 8 ${opset} `));
      // The tiny runs have 2 layers: one Attention, one BiasGelu and two SkipLayerNormalization each.
      const counts = operatorCounts(graph);
      const contrib = Object.keys(counts).filter((op) => op.startsWith('com.microsoft:'));
      if (operators === 'onnx') expect(contrib).toEqual([]);
      else expect(counts).toMatchObject({ 'com.microsoft:EmbedLayerNormalization': 1, 'com.microsoft:Attention': 2, 'com.microsoft:SkipLayerNormalization': 4, 'com.microsoft:BiasGelu': 2 });
      expect(parseModelCard(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')), 'model.json').operators).toBe(operators);
    });
  }

  it('int8 two-tower: cosine ≥ 0.99 per vector, a quarter of the file size, valid ONNX', async () => {
    const { report, dir, runDir } = await parityOf({ pooling: 'mean', head: 'cosine' }, { quantize: 'int8', operators: 'onnxruntime' });
    expect(report.quantization).toBe('int8');
    expect(report.minCosine).toBeGreaterThanOrEqual(0.99);
    expect(report.maxAbsDiff).toBeGreaterThan(0); // it really is quantised
    const fp32 = exportRunTo(runDir, { quantize: 'none' });
    expect(statSync(join(dir, 'model.onnx')).size).toBeLessThan(0.35 * statSync(join(fp32, 'model.onnx')).size);
    expect(onnxCheck(join(dir, 'model.onnx'))).toMatch(/^ok 8 17 \['input_ids', 'attention_mask'\] \['embedding'\]/);
    // int8 keeps its quantised Q/K/V products (6 per layer in all), so attention stays unfused;
    // the residual norms and the FFN's GELU still fuse.
    const counts = operatorCounts(join(dir, 'model.onnx'));
    expect(counts).toMatchObject({ 'ai.onnx:MatMulInteger': 12, 'com.microsoft:SkipLayerNormalization': 4, 'com.microsoft:BiasGelu': 2 });
    expect(counts['com.microsoft:Attention']).toBeUndefined();
  });

  it('int8 cross-encoder: scores within 0.1 of the eager logits', async () => {
    const { report, dir } = await parityOf({ kind: 'cross-encoder' }, { quantize: 'int8' });
    expect(report.maxAbsDiff).toBeLessThanOrEqual(0.1);
    expect(onnxCheck(join(dir, 'model.onnx'))).toMatch(/\['input_ids', 'attention_mask', 'token_type_ids'\] \['score'\]/);
  });
});

describe('exported model directory', () => {
  it('has a card that describes the model and where it came from, and the training tokenizer', async () => {
    const runDir = tinyRun({ prompts: { title: 'job title: {text}' } });
    const dir = exportRunTo(runDir);
    const card = parseModelCard(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')), 'model.json');
    expect(card.kind).toBe('two-tower');
    if (card.kind !== 'two-tower') return;
    expect(card.modelId).toMatch(/^kiln-run-\w+@[0-9a-f]{12}$/);
    expect(card.dimension).toBe(32);
    expect(card.normalized).toBe(true);
    expect(card.prompts).toEqual({ title: 'job title: {text}' });
    expect(card.maxLength).toEqual({ query: 24, doc: 16 });
    expect(card.graphs).toEqual({ query: 'model.onnx', doc: 'model.onnx' });
    expect(card.metrics).toEqual({ 'tiny/mrr': 0.5 });
    const { exportable } = loadExportableRun(runDir);
    expect(card.parameters).toBe(exportable.model.parameterCount());
    exportable.model.dispose();
    expect(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(join(runDir, 'tokenizer.json'), 'utf8')));
    // The same weights give the same id; different weights another.
    expect(JSON.parse(readFileSync(join(exportRunTo(runDir), 'model.json'), 'utf8')).modelId).toBe(card.modelId);
    expect(JSON.parse(readFileSync(join(exportRunTo(tinyRun({ seed: 8 })), 'model.json'), 'utf8')).modelId).not.toBe(card.modelId);
  });

  it('takes any batch size and sequence length (dynamic axes), and the vectors are unit-norm', async () => {
    const dir = exportRunTo(tinyRun());
    const model = await ExportedModel.load(dir, { batchSize: 5 });
    try {
      const vectors = await model.embed(TITLES, { side: 'query' });
      const one = await model.embed([TITLES[3]!], { side: 'query' });
      expect(vectors).toHaveLength(TITLES.length);
      for (const v of vectors) expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      // Batched with longer neighbours (padding) or alone, a text gets the same vector.
      for (let j = 0; j < 32; j++) expect(one[0]![j]).toBeCloseTo(vectors[3]![j]!, 5);
    } finally {
      await model.release();
    }
  });

  it('replaces an earlier export only when the new one is complete', async () => {
    const runDir = tinyRun();
    const out = exportRunTo(runDir);
    const before = readFileSync(join(out, 'model.json'), 'utf8');
    // A run whose weights are gone cannot export: the earlier directory stays as it was.
    const broken = tinyRun();
    rmSync(join(broken, 'model.safetensors'));
    await expect(exportRun(broken, { outDir: out, quantize: 'none', opset: 17 })).rejects.toThrow(/model\.safetensors is missing/);
    expect(readFileSync(join(out, 'model.json'), 'utf8')).toBe(before);
    // A successful export over it replaces it and leaves no staging directories behind.
    const result = await exportRun(tinyRun({ seed: 9 }), { outDir: out, quantize: 'none', opset: 17 });
    expect(result.parity?.passed).toBe(true);
    expect(result.parityInputs).toMatch(/built-in/); // a run without config.yaml
    expect(readFileSync(join(out, 'model.json'), 'utf8')).not.toBe(before);
    expect(readdirSync(dirname(out))).toEqual(['model']);
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
  });

  it('rejects opsets it does not support, naming the range', () => {
    expect(() => new OnnxGraphBuilder(11)).toThrow(/opset 11 is not supported; expected an integer from 13 to 20/);
    const { exportable, source } = loadExportableRun(tinyRun());
    expect(() => exportModel(exportable, source, '/nonexistent/never', { quantize: 'none', opset: 21 })).toThrow(/opset 21/);
    exportable.model.dispose();
  });
});
