/**
 * The models against PyTorch: an independent plain-torch BERT (no `transformers`) loads the
 * weights Kiln saves with `saveSafetensors` and must give the same hidden states, poolings,
 * gradients and head scores at float32 tolerance. Also: two-tower parameter naming, bert-mini's
 * parameter count against the formula, dropout in train/eval mode, and no tensor leaks.
 *
 * The reference is written out by hand below: embeddings (word + position + type 0) →
 * LayerNorm → N post-LN layers (multi-head attention with an additive padding mask, exact-GELU
 * FFN), then mean / cls / last pooling. LayerNorm, GELU and softmax are spelled out rather than
 * taken from torch.nn.functional, so the comparison does not reduce to "the same ATen call".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  liveTensorCount,
  manualSeed,
  noGrad,
  randint,
  randn,
  saveSafetensors,
  tensor,
  tidy,
  type Tensor,
} from '../src/engine/index.js';
import { Dropout } from '../src/engine/nn/index.js';
import { BertEncoder, createHead, pool, TwoTowerModel, type EncoderConfig, type HeadConfig, type PoolingMode, type TwoTowerConfig } from '../src/models/index.js';
import { expectClose } from './helpers/close.js';
import { runPython } from './helpers/python.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONFIG: EncoderConfig = {
  vocabSize: 50,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 64,
  maxPositions: 16,
  typeVocabSize: 2,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  layerNormEps: 1e-12,
  initStd: 0.02,
  padId: 0,
};
const MODES: PoolingMode[] = ['mean', 'cls', 'last'];
const LENGTHS = [9, 5, 1, 7]; // ragged: padding on the right, one text of a single token
const SEQ = 9;
const GRAD_PARAMS = [
  'embeddings.word_embeddings.weight',
  'embeddings.position_embeddings.weight',
  'embeddings.token_type_embeddings.weight',
  'embeddings.LayerNorm.weight',
  'encoder.layer.0.attention.self.query.weight',
  'encoder.layer.0.attention.self.key.weight',
  'encoder.layer.0.attention.self.value.bias',
  'encoder.layer.0.attention.output.dense.weight',
  'encoder.layer.1.intermediate.dense.weight',
  'encoder.layer.1.output.LayerNorm.bias',
];

/**
 * BERT's N(0, 0.02²) init gives near-uniform attention, which would hide masking and scaling
 * bugs; re-draw every parameter at a scale where attention is peaked and LayerNorm's affine
 * part matters.
 */
function randomize(model: { namedParameters(): Array<[string, Tensor]> }, seed: number): void {
  manualSeed(seed);
  noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      p.normal_(/LayerNorm\.weight$/.test(name) ? 1 : 0, 0.3);
    }
  });
}

function batch(): { ids: Tensor; mask: Tensor } {
  manualSeed(11);
  const ids = randint(1, CONFIG.vocabSize, [LENGTHS.length, SEQ]);
  const maskRows = LENGTHS.map((n) => Array.from({ length: SEQ }, (_, t) => (t < n ? 1 : 0)));
  const mask = tensor(maskRows, { dtype: 'int64' });
  // Padding positions carry the pad id, as a tokenizer would give them.
  const padded = tidy(() => ids.mul(mask).add(mask.rsub(1).mul(CONFIG.padId)));
  ids.dispose();
  return { ids: padded, mask };
}

/** Plain-torch BERT over the safetensors file Kiln wrote; reads a JSON request on stdin. */
const REFERENCE = String.raw`
import json, math, sys
import torch
from safetensors.torch import load_file

torch.set_num_threads(1)
req = json.load(sys.stdin)
c = req["config"]
P = load_file(req["weights"])
for p in P.values():
    p.requires_grad_(True)
H, nh, eps = c["hiddenSize"], c["numHeads"], c["layerNormEps"]
d = H // nh

def layer_norm(x, pre):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, as LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * P[pre + ".weight"] + P[pre + ".bias"]

def dense(x, pre):
    return x @ P[pre + ".weight"].t() + P[pre + ".bias"]

def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))

def softmax(x):
    e = torch.exp(x - x.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)

def bert(ids, mask):
    B, L = ids.shape
    # nn.Embedding(padding_idx=pad) semantics, as Hugging Face's BertEmbeddings.
    word = torch.nn.functional.embedding(ids, P["embeddings.word_embeddings.weight"], padding_idx=c["padId"])
    pos = P["embeddings.position_embeddings.weight"][:L]
    typ = P["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
    h = layer_norm(word + pos + typ, "embeddings.LayerNorm")
    bias = (1.0 - mask.float())[:, None, None, :] * torch.finfo(torch.float32).min
    for i in range(c["numLayers"]):
        pre = "encoder.layer.%d." % i
        heads = lambda x: x.reshape(B, L, nh, d).transpose(1, 2)
        q = heads(dense(h, pre + "attention.self.query"))
        k = heads(dense(h, pre + "attention.self.key"))
        v = heads(dense(h, pre + "attention.self.value"))
        a = softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias) @ v
        a = a.transpose(1, 2).reshape(B, L, H)
        h = layer_norm(dense(a, pre + "attention.output.dense") + h, pre + "attention.output.LayerNorm")
        f = dense(gelu(dense(h, pre + "intermediate.dense")), pre + "output.dense")
        h = layer_norm(f + h, pre + "output.LayerNorm")
    return h

def pooled(mode, h, mask):
    m = mask.float()
    if mode == "mean":
        return (h * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
    if mode == "cls":
        return h[:, 0]
    return h[torch.arange(h.shape[0]), mask.sum(1).long() - 1]

ids = torch.tensor(req["ids"], dtype=torch.long)
mask = torch.tensor(req["mask"], dtype=torch.long)
h = bert(ids, mask)
pools = {m: pooled(m, h, mask) for m in req["modes"]}
loss = sum((pools[m] * torch.tensor(req["weights_" + m])).sum() for m in req["modes"])
loss.backward()
out = {
    "hidden": h.detach().flatten().tolist(),
    "pooled": {m: p.detach().flatten().tolist() for m, p in pools.items()},
    "loss": loss.item(),
    "grads": {n: P[n].grad.flatten().tolist() for n in req["grad_params"]},
}

# Heads over fixed query/doc vectors.
q = torch.tensor(req["heads"]["q"])
dd = torch.tensor(req["heads"]["d"])
cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(dd, dim=-1).t()
hd = load_file(req["heads"]["weights"])
prod = q[:, None, :] * dd[None, :, :]
mlp = gelu(prod @ hd["hidden.weight"].t() + hd["hidden.bias"]) @ hd["out.weight"].t() + hd["out.bias"]
out["heads"] = {"cosine": cos.flatten().tolist(), "dot": (q @ dd.t()).flatten().tolist(), "hadamard_mlp": mlp.squeeze(-1).flatten().tolist()}
print(json.dumps(out))
`;

interface Reference {
  hidden: number[];
  pooled: Record<PoolingMode, number[]>;
  loss: number;
  grads: Record<string, number[]>;
  heads: Record<HeadConfig['type'], number[]>;
}

const HEAD_TYPES: HeadConfig['type'][] = ['cosine', 'dot', 'hadamard_mlp'];

describe('BertEncoder against a plain-torch BERT on the same weights', () => {
  let encoder: BertEncoder;
  let ids: Tensor;
  let mask: Tensor;
  let ref: Reference;
  const kiln = { hidden: [] as number[], pooled: {} as Record<PoolingMode, number[]>, loss: 0, grads: {} as Record<string, number[]> };
  const heads = { q: [] as number[][], d: [] as number[][], hadamard: null as ReturnType<typeof createHead> | null };

  beforeAll(() => {
    encoder = new BertEncoder(CONFIG).eval();
    randomize(encoder, 3);
    ({ ids, mask } = batch());
    const weightsPath = join(dir, 'encoder.safetensors');
    saveSafetensors(weightsPath, encoder.stateDict());

    manualSeed(5);
    const poolWeights = Object.fromEntries(MODES.map((m) => [m, randn([LENGTHS.length, CONFIG.hiddenSize])])) as Record<PoolingMode, Tensor>;
    tidy(() => {
      const hidden = encoder.forward(ids, mask);
      kiln.hidden = hidden.toArray();
      let loss: Tensor | null = null;
      for (const m of MODES) {
        const p = pool(m, hidden, mask);
        kiln.pooled[m] = p.toArray();
        const term = p.mul(poolWeights[m]).sum();
        loss = loss === null ? term : loss.add(term);
      }
      loss!.backward();
      kiln.loss = loss!.item();
    });
    const params = encoder.stateDict();
    for (const name of GRAD_PARAMS) {
      const g = params.get(name)?.grad;
      if (g === null || g === undefined) throw new Error(`no gradient for ${name}`);
      kiln.grads[name] = g.toArray();
      g.dispose();
    }
    encoder.zeroGrad();

    // Heads: 3 queries × 5 docs of width 8.
    manualSeed(9);
    const q = randn([3, 8]);
    const d = randn([5, 8]);
    heads.q = [0, 1, 2].map((i) => tidy(() => q.select(0, i).toArray()));
    heads.d = [0, 1, 2, 3, 4].map((i) => tidy(() => d.select(0, i).toArray()));
    q.dispose();
    d.dispose();
    heads.hadamard = createHead(8, { type: 'hadamard_mlp', mlpHidden: 6 });
    const headPath = join(dir, 'head.safetensors');
    saveSafetensors(headPath, heads.hadamard.stateDict());

    const request = {
      config: CONFIG,
      weights: weightsPath,
      ids: [0, 1, 2, 3].map((i) => tidy(() => ids.select(0, i).toArray())),
      mask: [0, 1, 2, 3].map((i) => tidy(() => mask.select(0, i).toArray())),
      modes: MODES,
      grad_params: GRAD_PARAMS,
      ...Object.fromEntries(MODES.map((m) => [`weights_${m}`, [0, 1, 2, 3].map((i) => tidy(() => poolWeights[m].select(0, i).toArray()))])),
      heads: { q: heads.q, d: heads.d, weights: headPath },
    };
    for (const w of Object.values(poolWeights)) w.dispose();
    ref = JSON.parse(runPython(['-c', REFERENCE], { input: JSON.stringify(request) })) as Reference;
  });

  afterAll(() => {
    encoder?.dispose();
    ids?.dispose();
    mask?.dispose();
    heads.hadamard?.dispose();
  });

  it('the reference sees the padding: lengths are ragged and padded ids are the pad id', () => {
    expect(tidy(() => mask.sum(1).toArray())).toEqual(LENGTHS);
    expect(tidy(() => ids.mul(mask.rsub(1)).sum().item())).toBe(0);
  });

  it('hidden states [B, L, H] match at every position, padding included', () => {
    expect(kiln.hidden.length).toBe(LENGTHS.length * SEQ * CONFIG.hiddenSize);
    expectClose(kiln.hidden, ref.hidden, { rtol: 1e-5, atol: 1e-5, what: 'hidden states' });
  });

  it.each(MODES)('%s pooling matches', (mode) => {
    expect(kiln.pooled[mode].length).toBe(LENGTHS.length * CONFIG.hiddenSize);
    expectClose(kiln.pooled[mode], ref.pooled[mode], { rtol: 1e-5, atol: 1e-5, what: `${mode} pooling` });
  });

  it('the scalar loss and the gradients of parameters in every part of the model match', () => {
    expect(kiln.loss).toBeCloseTo(ref.loss, 3);
    for (const name of GRAD_PARAMS) {
      const g = kiln.grads[name]!;
      // Gradients are sums over the batch of O(1) terms: absolute error scales with their size.
      const scale = Math.max(...ref.grads[name]!.map(Math.abs));
      expect(scale, `${name}: the reference gradient is not trivially zero`).toBeGreaterThan(1e-3);
      expectClose(g, ref.grads[name]!, { rtol: 1e-4, atol: 2e-5 * scale, what: `grad ${name}` });
    }
    // The pad row of the word embeddings gets no gradient (nn.Embedding(padding_idx) semantics).
    const padRow = kiln.grads['embeddings.word_embeddings.weight']!.slice(CONFIG.padId * CONFIG.hiddenSize, (CONFIG.padId + 1) * CONFIG.hiddenSize);
    expect(padRow.every((v) => v === 0)).toBe(true);
  });

  it('padding does not leak into real positions: changing padded ids leaves real outputs unchanged', () => {
    tidy(() => {
      const other = ids.add(mask.rsub(1).mul(7)); // padded positions now hold id 7
      const a = encoder.forward(ids, mask);
      const b = encoder.forward(other, mask);
      const m = mask.unsqueeze(-1).to('float32');
      expect(a.sub(b).abs().mul(m).max().item()).toBe(0);
      for (const mode of MODES) expect(pool(mode, a, mask).sub(pool(mode, b, mask)).abs().max().item()).toBe(0);
    });
  });

  it.each(HEAD_TYPES)('%s head: matrix values match torch', (type) => {
    const head = type === 'hadamard_mlp' ? heads.hadamard! : createHead(8, { type, mlpHidden: 6 });
    const values = tidy(() => head.matrix(tensor(heads.q), tensor(heads.d)).toArray());
    expectClose(values, ref.heads[type], { rtol: 1e-5, atol: 1e-6, what: `${type} matrix` });
  });

  it.each(HEAD_TYPES)('%s head: pairs(q_i, d_j) equals matrix[i][j], shapes [B, C] and [N]', (type) => {
    const head = type === 'hadamard_mlp' ? heads.hadamard! : createHead(8, { type, mlpHidden: 6 });
    tidy(() => {
      const q = tensor(heads.q);
      const d = tensor(heads.d);
      const matrix = head.matrix(q, d);
      expect(matrix.shape).toEqual([3, 5]);
      // Every (i, j) as an aligned row pair: q repeated per doc, docs tiled per query.
      const qRows = q.unsqueeze(1).expand(3, 5, 8).reshape(15, 8);
      const dRows = d.unsqueeze(0).expand(3, 5, 8).reshape(15, 8);
      const pairs = head.pairs(qRows, dRows);
      expect(pairs.shape).toEqual([15]);
      expectClose(pairs.toArray(), matrix.flatten().toArray(), { rtol: 1e-5, atol: 1e-6, what: `${type} pairs vs matrix` });
      if (head.decomposable) {
        // An index of embed() vectors ranks by dot product: that dot product is the score.
        expectClose(head.embed(q).matmul(head.embed(d).transpose(0, 1)).flatten().toArray(), matrix.flatten().toArray(), { rtol: 1e-5, atol: 1e-6, what: `${type} embed dot` });
      }
    });
  });
});

describe('two-tower model', () => {
  const twoTower = (towers: 'shared' | 'separate', head: HeadConfig['type'] = 'hadamard_mlp'): TwoTowerModel =>
    new TwoTowerModel({ encoder: CONFIG, pooling: 'mean', towers, prompts: { title: 'job title: {text}' }, head: { type: head, mlpHidden: 16 } } satisfies TwoTowerConfig);

  it('shared towers: one encoder under encoder.*, both sides identical; separate: query_encoder.* and doc_encoder.*', () => {
    const shared = twoTower('shared');
    const separate = twoTower('separate');
    try {
      const encoderNames = new BertEncoder(CONFIG);
      const base = encoderNames.namedParameters().map(([n]) => n);
      const baseCount = encoderNames.parameterCount();
      encoderNames.dispose();
      const headNames = ['head.hidden.weight', 'head.hidden.bias', 'head.out.weight', 'head.out.bias'];
      const headCount = 32 * 16 + 16 + 16 + 1;

      expect(shared.queryEncoder).toBe(shared.docEncoder);
      expect(shared.namedParameters().map(([n]) => n)).toEqual([...base.map((n) => `encoder.${n}`), ...headNames]);
      expect(shared.parameterCount()).toBe(baseCount + headCount);
      expect(new Set(shared.parameters()).size).toBe(shared.parameters().length); // no parameter listed twice

      expect(separate.queryEncoder).not.toBe(separate.docEncoder);
      expect(separate.namedParameters().map(([n]) => n)).toEqual([
        ...base.map((n) => `query_encoder.${n}`),
        ...base.map((n) => `doc_encoder.${n}`),
        ...headNames,
      ]);
      expect(separate.parameterCount()).toBe(2 * baseCount + headCount);

      const cosine = twoTower('shared', 'cosine');
      expect(cosine.parameterCount()).toBe(baseCount); // parameter-free head
      cosine.dispose();
    } finally {
      shared.dispose();
      separate.dispose();
    }
  });

  it('shared towers encode both sides alike; separate towers differ; embed() is unit-norm for cosine', () => {
    const shared = twoTower('shared', 'cosine').eval();
    const separate = twoTower('separate', 'cosine').eval();
    const { ids, mask } = batch();
    try {
      tidy(() => {
        const b = { inputIds: ids, attentionMask: mask };
        expect(shared.encode('query', b).sub(shared.encode('doc', b)).abs().max().item()).toBe(0);
        expect(separate.encode('query', b).sub(separate.encode('doc', b)).abs().max().item()).toBeGreaterThan(1e-4);
        expect(shared.encode('query', b).shape).toEqual([LENGTHS.length, CONFIG.hiddenSize]);
        expectClose(shared.embed('doc', b).norm(2, -1).toArray(), [1, 1, 1, 1], { rtol: 1e-5, what: 'norms' });
      });
      expect(shared.prompt('title', 'nurse')).toBe('job title: nurse');
      expect(shared.prompt('skill', 'python')).toBe('python');
    } finally {
      shared.dispose();
      separate.dispose();
      ids.dispose();
      mask.dispose();
    }
  });
});

describe('parameter count', () => {
  it('bert-mini (vocab 30522, hidden 256, 4 layers, FFN 1024, 512 positions) matches the formula', () => {
    const c: EncoderConfig = { ...CONFIG, vocabSize: 30522, hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024, maxPositions: 512 };
    const model = new BertEncoder(c);
    try {
      const H = c.hiddenSize;
      const F = c.intermediateSize;
      const embeddings = (c.vocabSize + c.maxPositions + c.typeVocabSize) * H + 2 * H; // tables + LayerNorm
      const attention = 4 * (H * H + H) + 2 * H; // Q, K, V, output projection + LayerNorm
      const ffn = H * F + F + F * H + H + 2 * H; // up, down + LayerNorm
      const expected = embeddings + c.numLayers * (attention + ffn);
      expect(expected).toBe(11_104_768); // Hugging Face's bert-mini is 11,170,560 with its pooler (H² + H)
      expect(model.parameterCount()).toBe(expected);
      expect(model.namedParameters().length).toBe(5 + c.numLayers * 16);
    } finally {
      model.dispose();
    }
  });
});

describe('dropout', () => {
  const dropouts = (m: BertEncoder): Dropout[] => {
    const out: Dropout[] = [];
    const walk = (mod: { children(): Array<[string, unknown]> }): void => {
      for (const [, child] of mod.children()) {
        if (child instanceof Dropout) out.push(child);
        walk(child as { children(): Array<[string, unknown]> });
      }
    };
    walk(m);
    return out;
  };

  it('is active in train mode and off in eval mode', () => {
    const model = new BertEncoder(CONFIG);
    randomize(model, 3);
    const { ids, mask } = batch();
    try {
      // embeddings + per layer: attention probs, attention output, FFN output
      expect(dropouts(model).length).toBe(1 + 3 * CONFIG.numLayers);
      expect(model.training).toBe(true);
      expect(dropouts(model).every((d) => d.training)).toBe(true);
      tidy(() => {
        manualSeed(1);
        const t1 = model.forward(ids, mask);
        const t2 = model.forward(ids, mask);
        manualSeed(1);
        const t1again = model.forward(ids, mask);
        model.eval();
        expect(dropouts(model).every((d) => !d.training)).toBe(true);
        const e1 = model.forward(ids, mask);
        const e2 = model.forward(ids, mask);
        expect(e1.sub(e2).abs().max().item()).toBe(0); // deterministic
        expect(t1.sub(t2).abs().max().item()).toBeGreaterThan(1e-3); // fresh masks each call
        expect(t1.sub(e1).abs().max().item()).toBeGreaterThan(1e-3);
        expect(t1.sub(t1again).abs().max().item()).toBe(0); // masks follow the seed
      });
    } finally {
      model.dispose();
      ids.dispose();
      mask.dispose();
    }
  });

  it('train mode with p = 0 equals eval mode; attention dropout alone changes the output', () => {
    const { ids, mask } = batch();
    const none = new BertEncoder({ ...CONFIG, hiddenDropout: 0, attentionDropout: 0 });
    const attnOnly = new BertEncoder({ ...CONFIG, hiddenDropout: 0, attentionDropout: 0.5 });
    randomize(none, 3);
    randomize(attnOnly, 3);
    try {
      tidy(() => {
        const train = none.forward(ids, mask);
        const evalOut = none.eval().forward(ids, mask);
        expect(train.sub(evalOut).abs().max().item()).toBe(0);
        expect(attnOnly.forward(ids, mask).sub(evalOut).abs().max().item()).toBeGreaterThan(1e-3);
        expect(attnOnly.eval().forward(ids, mask).sub(evalOut).abs().max().item()).toBe(0);
      });
    } finally {
      none.dispose();
      attnOnly.dispose();
      ids.dispose();
      mask.dispose();
    }
  });
});

describe('no tensor leaks', () => {
  it('a tidy training-shaped loop (forward, pool, head, backward) keeps liveTensorCount constant', () => {
    const atStart = liveTensorCount();
    const model = new TwoTowerModel({ encoder: CONFIG, pooling: 'mean', towers: 'shared', prompts: {}, head: { type: 'hadamard_mlp', mlpHidden: 16 } });
    const { ids, mask } = batch();
    const b = { inputIds: ids, attentionMask: mask };
    const step = (): number =>
      tidy(() => {
        const q = model.encode('query', b);
        const d = model.encode('doc', b);
        const loss = model.head.matrix(q, d).logSoftmax(-1).mean().neg().add(model.head.pairs(q, d).mean());
        for (const mode of MODES) pool(mode, model.queryEncoder.forward(ids, mask), mask);
        loss.backward();
        model.zeroGrad();
        return loss.item();
      });
    try {
      step();
      const before = liveTensorCount();
      for (let i = 0; i < 5; i++) step();
      expect(liveTensorCount()).toBe(before);
      model.eval();
      tidy(() => {
        model.embed('doc', b);
      });
      expect(liveTensorCount()).toBe(before);
    } finally {
      model.dispose();
      ids.dispose();
      mask.dispose();
    }
    expect(liveTensorCount()).toBe(atStart); // construction and disposal release everything too
  });
});
