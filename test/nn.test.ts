/**
 * nn building blocks: initialisation matches torch.nn bit for bit under the same seed (the
 * same libtorch generator and the same sequence of draws), forward passes match the functional
 * ops, and state dicts round-trip through safetensors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Module, Linear, LayerNorm, Embedding, Dropout } from '../src/engine/nn/index.js';
import { linear, loadSafetensors, manualSeed, noGrad, ones, randn, saveSafetensors, tensor, tidy, type Tensor } from '../src/engine/index.js';
import { runPython } from './helpers/python.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-nn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class TinyMlp extends Module {
  readonly embed = this.registerModule('embed', new Embedding(10, 4, { paddingIdx: 0 }));
  readonly hidden = this.registerModule('hidden', new Linear(4, 6));
  readonly norm = this.registerModule('norm', new LayerNorm(6));
  readonly drop = this.registerModule('drop', new Dropout(0.5));
  readonly out = this.registerModule('out', new Linear(6, 1, { bias: false }));

  forward(ids: Tensor): Tensor {
    const x = this.embed.forward(ids); // (batch, 4)
    return this.out.forward(this.drop.forward(this.norm.forward(this.hidden.forward(x).gelu()))); // (batch, 1)
  }
}

describe('initialisation matches torch.nn under the same seed', () => {
  const reference = JSON.parse(
    runPython([
      '-c',
      `
import json, torch
torch.manual_seed(0); lin = torch.nn.Linear(5, 3)
torch.manual_seed(1); emb = torch.nn.Embedding(10, 4, padding_idx=2)
print(json.dumps({"w": lin.weight.flatten().tolist(), "b": lin.bias.tolist(), "e": emb.weight.flatten().tolist()}))
`,
    ]),
  ) as { w: number[]; b: number[]; e: number[] };

  it('Linear: U(-1/sqrt(in), 1/sqrt(in)) weight, then bias, as torch.nn.Linear', () => {
    manualSeed(0);
    const layer = new Linear(5, 3);
    expect(layer.weight.toArray()).toEqual(reference.w);
    expect(layer.bias!.toArray()).toEqual(reference.b);
    layer.dispose();
  });

  it('Embedding: N(0, 1) with the padding row zeroed, as torch.nn.Embedding', () => {
    manualSeed(1);
    const layer = new Embedding(10, 4, { paddingIdx: 2 });
    expect(layer.weight.toArray()).toEqual(reference.e);
    expect(layer.weight.toArray().slice(8, 12)).toEqual([0, 0, 0, 0]);
    layer.dispose();
  });

  it('LayerNorm starts as the identity affine map; BERT-style Linear init is N(0, std) with zero bias', () => {
    const norm = new LayerNorm(3);
    expect(norm.weight.toArray()).toEqual([1, 1, 1]);
    expect(norm.bias.toArray()).toEqual([0, 0, 0]);
    manualSeed(3);
    const layer = new Linear(256, 256, { initStd: 0.02 });
    const w = layer.weight.toArray();
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(1e-3);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
    expect(layer.bias!.toArray().every((v) => v === 0)).toBe(true);
    norm.dispose();
    layer.dispose();
  });
});

describe('Module', () => {
  it('names, counts and owns its parameters; optional ones registered as null are absent', () => {
    const model = new TinyMlp();
    expect(model.namedParameters().map(([name]) => name)).toEqual([
      'embed.weight',
      'hidden.weight',
      'hidden.bias',
      'norm.weight',
      'norm.bias',
      'out.weight',
    ]);
    expect(model.parameterCount()).toBe(10 * 4 + 4 * 6 + 6 + 6 + 6 + 6);
    expect(model.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(model.out.bias).toBeNull();
    expect(String(model)).toContain('(hidden): Linear(inFeatures=4, outFeatures=6, bias=true)');
    // Parameters are kept out of scopes: a tidy around construction does not free them.
    const inner = tidy(() => new Linear(2, 2));
    expect(inner.weight.isDisposed).toBe(false);
    inner.dispose();
    model.dispose();
    expect(model.hidden.weight.isDisposed).toBe(true);
  });

  it('Linear.forward is F.linear with its own parameters', () => {
    const layer = new Linear(4, 3);
    tidy(() => {
      const x = randn([2, 4]);
      expect(layer.forward(x).toArray()).toEqual(linear(x, layer.weight, layer.bias).toArray());
    });
    layer.dispose();
  });

  it('train()/eval() reach every child: dropout is random in training and the identity in evaluation', () => {
    const model = new TinyMlp();
    tidy(() => {
      const ids = tensor([1, 3, 5, 7], { dtype: 'int64' });
      model.eval();
      expect(model.drop.training).toBe(false);
      expect(model.forward(ids).toArray()).toEqual(model.forward(ids).toArray());
      model.train();
      expect(model.drop.training).toBe(true);
      const h = ones([1000]);
      const kept = model.drop.forward(h).toArray();
      expect(new Set(kept)).toEqual(new Set([0, 2])); // inverted dropout: survivors scaled by 1/(1-p)
    });
    model.dispose();
  });

  it('the padding row of an embedding gets no gradient', () => {
    const embed = new Embedding(5, 3, { paddingIdx: 0 });
    tidy(() => embed.forward(tensor([0, 1, 0, 2], { dtype: 'int64' })).sum().backward());
    const grad = embed.weight.grad!;
    expect(grad.toArray().slice(0, 3)).toEqual([0, 0, 0]);
    expect(grad.toArray().slice(3, 6)).toEqual([1, 1, 1]);
    grad.dispose();
    embed.dispose();
  });

  it('stateDict → safetensors → loadStateDict reproduces the model exactly', () => {
    const source = new TinyMlp().eval();
    const target = new TinyMlp().eval();
    const path = join(dir, 'tiny.safetensors');
    saveSafetensors(path, source.stateDict(), { format: 'kiln' });
    const loaded = loadSafetensors(path);
    target.loadStateDict(loaded.tensors);
    for (const t of loaded.tensors.values()) t.dispose();
    tidy(() => {
      const ids = tensor([1, 2, 3], { dtype: 'int64' });
      expect(target.forward(ids).toArray()).toEqual(source.forward(ids).toArray());
    });
    source.dispose();
    target.dispose();
  });

  it('loadStateDict names missing and unexpected keys, and shape mismatches', () => {
    const model = new Linear(3, 2);
    const wrong = new Map([['weight', ones([2, 4])], ['bias', ones([2])]]);
    expect(() => model.loadStateDict(wrong)).toThrow("Linear.loadStateDict: 'weight' has shape [2x4], expected [2x3]");
    const partial = new Map([['weight', ones([2, 3])], ['extra', ones([1])]]);
    expect(() => model.loadStateDict(partial)).toThrow('Linear.loadStateDict: missing [bias], unexpected [extra]');
    noGrad(() => model.loadStateDict(new Map([['weight', ones([2, 3])]]), { strict: false }));
    expect(model.weight.toArray()).toEqual([1, 1, 1, 1, 1, 1]);
    for (const t of [...wrong.values(), ...partial.values()]) t.dispose();
    model.dispose();
  });
});
