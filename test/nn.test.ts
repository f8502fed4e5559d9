/**
 * nn building blocks: initialisation matches torch.nn bit for bit under the same seed (the
 * same libtorch generator and the same sequence of draws), forward passes match the functional
 * ops, and state dicts round-trip through safetensors. `Module`'s bookkeeping follows
 * torch.nn.Module: a tied weight is one parameter (listed once, counted once, updated once per
 * optimizer step, checked against torch.optim.AdamW on the same tied model), `requiresGrad_`
 * freezes, and buffers are saved and freed but never trained.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Module, Linear, LayerNorm, Embedding, Dropout } from '../src/engine/nn/index.js';
import {
  AdamW,
  crossEntropy,
  linear,
  liveTensorCount,
  loadSafetensors,
  manualSeed,
  noGrad,
  ones,
  randn,
  saveSafetensors,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../src/engine/index.js';
import { expectClose } from './helpers/close.js';
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

/** An output layer that holds another module's weight (a tied weight, as BERT's MLM decoder). */
class TiedOutput extends Module {
  constructor(readonly weight: Tensor) {
    super();
    this.registerParameter('weight', weight);
  }
}

/** logits = tanh(proj(E[ids])) Eᵀ: the embedding matrix E is used twice, as lookup table and output layer. */
class TiedLm extends Module {
  static readonly VOCAB = 7;
  static readonly DIM = 4;
  readonly embed = this.registerModule('embed', new Embedding(TiedLm.VOCAB, TiedLm.DIM, { dtype: 'float64' }));
  readonly proj = this.registerModule('proj', new Linear(TiedLm.DIM, TiedLm.DIM, { dtype: 'float64' }));
  readonly decoder = this.registerModule('decoder', new TiedOutput(this.embed.weight));

  forward(ids: Tensor): Tensor {
    const h = this.proj.forward(this.embed.forward(ids)).tanh(); // (N, DIM)
    return linear(h, this.decoder.weight); // (N, VOCAB)
  }
}

describe('Module: a tied weight is one parameter', () => {
  it('namedParameters lists the tied tensor once, under the first name met; parameterCount counts it once', () => {
    const model = new TiedLm();
    expect(model.decoder.weight).toBe(model.embed.weight);
    expect(model.namedParameters().map(([name]) => name)).toEqual(['embed.weight', 'proj.weight', 'proj.bias']);
    expect(new Set(model.parameters()).size).toBe(model.parameters().length);
    expect(model.parameterCount()).toBe(7 * 4 + 4 * 4 + 4);
    expect([...model.stateDict().keys()]).toEqual(['embed.weight', 'proj.weight', 'proj.bias']);
    // The child alone still lists the tensor under its own name.
    expect(model.decoder.namedParameters().map(([name]) => name)).toEqual(['weight']);
    model.dispose();
    expect(model.embed.weight.isDisposed).toBe(true);
  });

  it('registering an already-registered tensor keeps its requiresGrad flag; freezing it under either name freezes the one tensor', () => {
    const embed = new Embedding(5, 3);
    embed.requiresGrad_(false);
    const tied = new TiedOutput(embed.weight);
    expect(tied.weight.requiresGrad).toBe(false); // not re-enabled by the second registration
    tied.requiresGrad_(true);
    expect(embed.weight.requiresGrad).toBe(true);
    embed.dispose();
  });

  // Three AdamW steps of cross entropy on TiedLm, by Kiln and by torch.nn with
  // `decoder.weight = embed.weight` (transformers' tie_weights) and AdamW over
  // model.parameters(), which lists the tied weight once. Float64 on both sides.
  const STEPS = 3;
  const IDS = [1, 3, 3, 6, 0];
  const TARGETS = [2, 3, 5, 0, 6];
  const TIED_REFERENCE = String.raw`
import json, sys
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
V, D = req["vocab"], req["dim"]
embed, proj = torch.nn.Embedding(V, D), torch.nn.Linear(D, D)
decoder = torch.nn.Linear(D, V, bias=False)
decoder.weight = embed.weight
model = torch.nn.ModuleDict({"embed": embed, "proj": proj, "decoder": decoder})
with torch.no_grad():
    embed.weight.copy_(torch.tensor(req["embed"]).reshape(V, D))
    proj.weight.copy_(torch.tensor(req["proj_weight"]).reshape(D, D))
    proj.bias.copy_(torch.tensor(req["proj_bias"]))
ids, targets = torch.tensor(req["ids"]), torch.tensor(req["targets"])
loss_of = lambda e_in, e_out: F.cross_entropy(torch.tanh(proj(F.embedding(ids, e_in))) @ e_out.t(), targets)

# The two uses' gradients separately, from untied copies of E: the tied gradient is their sum.
e_in = embed.weight.detach().clone().requires_grad_(True)
e_out = embed.weight.detach().clone().requires_grad_(True)
g_in, g_out = torch.autograd.grad(loss_of(e_in, e_out), [e_in, e_out])

opt = torch.optim.AdamW(model.parameters(), lr=req["lr"], weight_decay=req["weight_decay"])
out = {"names": [n for n, _ in model.named_parameters()], "n_params": sum(1 for _ in model.parameters()),
       "grad_lookup": g_in.flatten().tolist(), "grad_output": g_out.flatten().tolist(), "steps": []}
for step in range(req["steps"]):
    opt.zero_grad()
    loss = loss_of(embed.weight, decoder.weight)
    loss.backward()
    if step == 0:
        out["grad"] = embed.weight.grad.flatten().tolist()
    opt.step()
    out["steps"].append({"loss": loss.item(), "embed": embed.weight.detach().flatten().tolist(), "proj_weight": proj.weight.detach().flatten().tolist()})
print(json.dumps(out))
`;

  it('the tied gradient sums both uses and AdamW over parameters() updates it once per step, as torch.optim.AdamW on a tied torch.nn model', () => {
    manualSeed(4);
    const model = new TiedLm();
    noGrad(() => model.embed.weight.mul_(0.5)); // N(0, 0.25): softmax not saturated
    const lr = 0.05;
    const weightDecay = 0.01;
    const ref = JSON.parse(
      runPython(['-c', TIED_REFERENCE], {
        input: JSON.stringify({
          vocab: TiedLm.VOCAB,
          dim: TiedLm.DIM,
          embed: model.embed.weight.toArray(),
          proj_weight: model.proj.weight.toArray(),
          proj_bias: model.proj.bias!.toArray(),
          ids: IDS,
          targets: TARGETS,
          lr,
          weight_decay: weightDecay,
          steps: STEPS,
        }),
      }),
    ) as { names: string[]; n_params: number; grad_lookup: number[]; grad_output: number[]; grad: number[]; steps: Array<{ loss: number; embed: number[]; proj_weight: number[] }> };

    // PyTorch lists the tied weight once too, under the same name.
    expect(ref.n_params).toBe(3);
    expect(model.namedParameters().map(([name]) => name)).toEqual(ref.names);

    const ids = tensor(IDS, { dtype: 'int64' });
    const targets = tensor(TARGETS, { dtype: 'int64' });
    const opt = new AdamW([{ params: model.parameters(), lr, weightDecay }]);
    try {
      for (let step = 0; step < STEPS; step++) {
        const loss = tidy(() => {
          const l = crossEntropy(model.forward(ids), targets);
          l.backward();
          return l.item();
        });
        if (step === 0) {
          const grad = tidy(() => model.embed.weight.grad!.toArray());
          // Both uses contribute, and the accumulated gradient is their sum.
          expect(Math.max(...ref.grad_lookup.map(Math.abs))).toBeGreaterThan(1e-3);
          expect(Math.max(...ref.grad_output.map(Math.abs))).toBeGreaterThan(1e-3);
          expectClose(ref.grad, ref.grad_lookup.map((g, i) => g + ref.grad_output[i]!), { rtol: 1e-12, atol: 1e-14, what: 'torch: tied grad = lookup grad + output grad' });
          expectClose(grad, ref.grad, { rtol: 1e-10, atol: 1e-12, what: 'tied embedding gradient' });
        }
        opt.step();
        opt.zeroGrad();
        const r = ref.steps[step]!;
        expect(loss).toBeCloseTo(r.loss, 10);
        // Two updates per step would move each element by about 2·lr instead of lr.
        expectClose(model.embed.weight.toArray(), r.embed, { rtol: 1e-8, atol: 1e-10, what: `tied weight after step ${step + 1}` });
        expectClose(model.proj.weight.toArray(), r.proj_weight, { rtol: 1e-8, atol: 1e-10, what: `proj.weight after step ${step + 1}` });
      }
    } finally {
      opt.dispose();
      ids.dispose();
      targets.dispose();
      model.dispose();
    }
  });
});

describe('Module.requiresGrad_', () => {
  it('requiresGrad_(false) on children: their parameters get no gradient from backward and stay unchanged by an AdamW step over the trainable ones', () => {
    manualSeed(2);
    const model = new TinyMlp().eval();
    expect(model.embed.requiresGrad_(false)).toBe(model.embed); // chainable, as torch's requires_grad_
    model.hidden.requiresGrad_(false);
    const frozen = model.namedParameters().filter(([name]) => name.startsWith('embed.') || name.startsWith('hidden.'));
    const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad);
    expect(frozen.map(([name]) => name)).toEqual(['embed.weight', 'hidden.weight', 'hidden.bias']);
    expect(frozen.every(([, p]) => !p.requiresGrad)).toBe(true);
    expect(trainable.map(([name]) => name)).toEqual(['norm.weight', 'norm.bias', 'out.weight']);

    const before = new Map(model.namedParameters().map(([name, p]) => [name, p.toArray()]));
    const opt = new AdamW([{ params: trainable.map(([, p]) => p), lr: 0.1 }]);
    const ids = tensor([1, 3, 5, 7], { dtype: 'int64' });
    try {
      tidy(() => model.forward(ids).square().sum().backward());
      for (const [name, p] of frozen) expect(p.grad, `${name} has no gradient`).toBeNull();
      for (const [name, p] of trainable) {
        const g = p.grad;
        expect(g, `${name} has a gradient`).not.toBeNull();
        g!.dispose();
      }
      opt.step();
      for (const [name, p] of frozen) expect(p.toArray(), `${name} unchanged`).toEqual(before.get(name));
      for (const [name, p] of trainable) expect(p.toArray(), `${name} updated`).not.toEqual(before.get(name));
    } finally {
      opt.dispose();
      ids.dispose();
    }
    model.dispose();
  });

  it('requiresGrad_(false) on the root freezes every parameter (outputs no longer require grad); requiresGrad_() unfreezes them all', () => {
    const model = new TinyMlp().eval();
    const ids = tensor([1, 2], { dtype: 'int64' });
    model.requiresGrad_(false);
    expect(model.parameters().some((p) => p.requiresGrad)).toBe(false);
    expect(tidy(() => model.forward(ids).requiresGrad)).toBe(false);
    model.requiresGrad_();
    expect(model.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(tidy(() => model.forward(ids).requiresGrad)).toBe(true);
    ids.dispose();
    model.dispose();
  });
});

/** A running mean kept as buffers (as BatchNorm's running_mean and num_batches_tracked). */
class RunningMean extends Module {
  readonly mean = this.registerBuffer('mean', zeros([2]));
  readonly count = this.registerBuffer('count', zeros([1], { dtype: 'int64' }));
}

/** y = x Wᵀ + b − running mean: a parameterised child and a child holding only buffers. */
class Centered extends Module {
  readonly lin = this.registerModule('lin', new Linear(3, 2));
  readonly stats = this.registerModule('stats', new RunningMean());

  forward(x: Tensor): Tensor {
    return this.lin.forward(x).sub(this.stats.mean); // (batch, 2)
  }
}

describe('Module buffers', () => {
  it('buffers are listed by namedBuffers and saved in stateDict, but are not parameters, not counted, and never require grad', () => {
    const model = new Centered();
    expect(model.namedBuffers().map(([name]) => name)).toEqual(['stats.mean', 'stats.count']);
    expect(model.namedParameters().map(([name]) => name)).toEqual(['lin.weight', 'lin.bias']);
    expect(model.parameterCount()).toBe(3 * 2 + 2);
    expect([...model.stateDict().keys()]).toEqual(['lin.weight', 'lin.bias', 'stats.mean', 'stats.count']);
    expect(model.stateDict().get('stats.mean')).toBe(model.stats.mean); // live, not a copy
    model.requiresGrad_(true);
    expect(model.stats.mean.requiresGrad).toBe(false);
    tidy(() => model.forward(ones([4, 3])).sum().backward());
    expect(model.stats.mean.grad).toBeNull();
    const g = model.lin.weight.grad;
    expect(g).not.toBeNull();
    g!.dispose();
    model.dispose();
  });

  it('a buffer name already used by a parameter or child is an error', () => {
    class Clash extends Module {
      constructor() {
        super();
        this.registerParameter('w', zeros([1]));
        this.registerBuffer('w', zeros([1]));
      }
    }
    expect(() => tidy(() => new Clash())).toThrow("Clash: 'w' is already registered");
  });

  it('buffers outlive tidy; stateDict → safetensors → loadStateDict fills them in a fresh module; a strict load names a missing buffer', () => {
    const source = tidy(() => new Centered());
    const target = tidy(() => new Centered());
    expect(source.stats.mean.isDisposed).toBe(false); // kept out of the scope, as parameters are
    noGrad(() => {
      source.stats.mean.copy_(tidy(() => tensor([0.5, -2])));
      source.stats.count.fill_(7);
    });
    const path = join(dir, 'buffers.safetensors');
    saveSafetensors(path, source.stateDict(), { format: 'kiln' });
    const loaded = loadSafetensors(path);
    expect([...loaded.tensors.keys()].sort()).toEqual(['lin.bias', 'lin.weight', 'stats.count', 'stats.mean']);
    target.loadStateDict(loaded.tensors);
    expect(target.stats.mean.toArray()).toEqual([0.5, -2]);
    expect(target.stats.count.toArray()).toEqual([7]);
    expect(target.stats.count.dtype).toBe('int64');
    tidy(() => {
      const x = randn([3, 3]);
      expect(target.forward(x).toArray()).toEqual(source.forward(x).toArray());
    });
    const withoutCount = new Map([...loaded.tensors].filter(([name]) => name !== 'stats.count'));
    expect(() => target.loadStateDict(withoutCount)).toThrow('Centered.loadStateDict: missing [stats.count], unexpected []');
    for (const t of loaded.tensors.values()) t.dispose();
    source.dispose();
    target.dispose();
  });

  it('dispose frees parameters and buffers: liveTensorCount returns to its value before construction', () => {
    const before = liveTensorCount();
    const model = new Centered();
    expect(liveTensorCount()).toBe(before + 4); // 2 parameters + 2 buffers
    model.dispose();
    expect(model.stats.mean.isDisposed).toBe(true);
    expect(model.stats.count.isDisposed).toBe(true);
    expect(liveTensorCount()).toBe(before);
  });
});
