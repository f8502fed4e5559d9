/**
 * Optimizers against PyTorch's torch.optim on the same problem and data.
 *
 * A tiny float64 regression MLP (tanh between two linear layers, MSE loss) is trained for a few
 * steps by Kiln and, from the same initial values, by the reference Python
 * (/usr/bin/python3, torch 1.13). Each step's parameters must agree to 1e-6 relative:
 * AdamW with two parameter groups (own lr and weight decay), SGD with Nesterov momentum,
 * learning-rate changes between steps, and clip_grad_norm_. Optimizer state saved with
 * stateBytes and loaded into a fresh optimizer must continue the run exactly.
 */
import { describe, expect, it } from 'vitest';

import {
  AdamW,
  SGD,
  Tensor,
  clipGradNorm,
  fromTypedArray,
  keep,
  linear,
  mseLoss,
  noGrad,
  tidy,
  type DType,
  type Optimizer,
} from '../src/engine/index.js';
import { expectClose } from './helpers/close.js';
import { runPython } from './helpers/python.js';

// ---- the problem ----------------------------------------------------------------------
const SHAPES = { w1: [4, 3], b1: [4], w2: [2, 4], b2: [2], x: [6, 3], y: [6, 2] } as const;
type Name = keyof typeof SHAPES;
const PARAMS = ['w1', 'b1', 'w2', 'b2'] as const;

/** Deterministic values in (-1, 1) (mulberry32), so both sides start from the same numbers. */
function values(seed: number, count: number): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1);
  }
  return out;
}

const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);
const INIT: Record<Name, number[]> = Object.fromEntries(
  (Object.keys(SHAPES) as Name[]).map((name, i) => [name, values(1000 + i, numel(SHAPES[name]))]),
) as Record<Name, number[]>;

type Params = Record<(typeof PARAMS)[number], Tensor>;

function makeParams(dtype: DType = 'float64'): Params {
  const make = (name: Name, requiresGrad: boolean) =>
    keep(tidy(() => fromTypedArray(Float64Array.from(INIT[name]), { shape: [...SHAPES[name]] }).to(dtype))).requiresGrad_(requiresGrad);
  return { w1: make('w1', true), b1: make('b1', true), w2: make('w2', true), b2: make('b2', true) };
}

function copyParams(from: Params): Params {
  const copy = (t: Tensor) => keep(tidy(() => t.detach().clone())).requiresGrad_();
  return { w1: copy(from.w1), b1: copy(from.b1), w2: copy(from.w2), b2: copy(from.b2) };
}

function copyInto(to: Params, from: Params): void {
  noGrad(() => {
    for (const name of PARAMS) to[name].copy_(from[name]);
  });
}

function disposeParams(p: Params): void {
  for (const name of PARAMS) p[name].dispose();
}

/** Forward and backward on the fixed batch; returns the loss. */
function lossAndBackward(p: Params): number {
  return tidy(() => {
    const dtype = p.w1.dtype;
    const x = fromTypedArray(Float64Array.from(INIT.x), { shape: [...SHAPES.x] }).to(dtype);
    const y = fromTypedArray(Float64Array.from(INIT.y), { shape: [...SHAPES.y] }).to(dtype);
    const loss = mseLoss(linear(linear(x, p.w1, p.b1).tanh(), p.w2, p.b2), y);
    loss.backward();
    return loss.item();
  });
}

/** Flattened parameter values in PARAMS order. */
function snapshot(p: Params): number[] {
  return PARAMS.flatMap((name) => p[name].toArray());
}

interface Trajectory {
  losses: number[];
  params: number[][]; // after each step
}

/** Runs `steps` steps; `before(step)` may change learning rates first. */
function train(p: Params, opt: Optimizer, steps: number, before: (step: number) => void = () => {}): Trajectory {
  const out: Trajectory = { losses: [], params: [] };
  for (let s = 0; s < steps; s++) {
    before(s);
    opt.zeroGrad();
    out.losses.push(lossAndBackward(p));
    opt.step();
    out.params.push(snapshot(p));
  }
  return out;
}

// ---- the reference --------------------------------------------------------------------
const REFERENCE = String.raw`
import json, sys, torch
spec = json.load(sys.stdin)
init, shapes = spec['init'], spec['shapes']
def tensor(name, dtype=torch.float64):
    return torch.tensor(init[name], dtype=torch.float64).reshape(shapes[name]).to(dtype)
def params(dtype=torch.float64):
    return {n: tensor(n, dtype).requires_grad_() for n in ('w1', 'b1', 'w2', 'b2')}
def loss_backward(p):
    dtype = p['w1'].dtype
    x, y = tensor('x', dtype), tensor('y', dtype)
    loss = torch.nn.functional.mse_loss(torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(x, p['w1'], p['b1'])), p['w2'], p['b2']), y)
    loss.backward()
    return loss.item()
def flat(p):
    return [v for n in ('w1', 'b1', 'w2', 'b2') for v in p[n].detach().reshape(-1).tolist()]
def run(kind, cfg):
    p = params()
    groups = [{'params': [p['w1'], p['b1']], **cfg['groups'][0]}, {'params': [p['w2'], p['b2']], **cfg['groups'][1]}]
    if kind == 'adamw':
        opt = torch.optim.AdamW(groups, betas=tuple(cfg['betas']), eps=cfg['eps'], amsgrad=False)
    else:
        opt = torch.optim.SGD(groups, lr=cfg['groups'][0]['lr'], momentum=cfg['momentum'], dampening=0, nesterov=cfg['nesterov'])
    losses, traj = [], []
    for step in range(cfg['steps']):
        for change in cfg.get('lr_changes', []):
            if change['step'] == step:
                for g in ([change['group']] if change['group'] is not None else range(len(opt.param_groups))):
                    opt.param_groups[g]['lr'] = change['lr']
        opt.zero_grad()
        losses.append(loss_backward(p))
        opt.step()
        traj.append(flat(p))
    return {'losses': losses, 'params': traj}
def clip(cfg):
    p = params(getattr(torch, cfg['dtype']))
    loss_backward(p)
    norm = torch.nn.utils.clip_grad_norm_(list(p.values()), cfg['max_norm'], norm_type=cfg['norm_type'])
    return {'norm': float(norm), 'grads': [v for n in ('w1', 'b1', 'w2', 'b2') for v in p[n].grad.double().reshape(-1).tolist()]}
out = {name: (clip(cfg) if cfg['kind'] == 'clip' else run(cfg['kind'], cfg)) for name, cfg in spec['runs'].items()}
print(json.dumps(out))
`;

const ADAMW = {
  kind: 'adamw',
  steps: 5,
  betas: [0.8, 0.95],
  eps: 1e-6,
  groups: [
    { lr: 0.05, weight_decay: 0.1 },
    { lr: 0.01, weight_decay: 0.0 },
  ],
};
const SGD_NESTEROV = {
  kind: 'sgd',
  steps: 5,
  momentum: 0.9,
  nesterov: true,
  groups: [
    { lr: 0.1, weight_decay: 0.01 },
    { lr: 0.03, weight_decay: 0.0 },
  ],
};
const LR_CHANGES = [
  { step: 2, group: 0, lr: 0.02 },
  { step: 3, group: null, lr: 0.005 },
];
const CLIPS = {
  clip2: { kind: 'clip', dtype: 'float64', max_norm: 0.05, norm_type: 2 },
  clipInf: { kind: 'clip', dtype: 'float64', max_norm: 0.02, norm_type: Infinity },
  clipNone: { kind: 'clip', dtype: 'float64', max_norm: 100, norm_type: 2 },
  clip2f32: { kind: 'clip', dtype: 'float32', max_norm: 0.05, norm_type: 2 },
} as const;

interface Reference {
  adamw: Trajectory;
  adamwLr: Trajectory;
  sgd: Trajectory;
  sgdLr: Trajectory;
  clip2: { norm: number; grads: number[] };
  clipInf: { norm: number; grads: number[] };
  clipNone: { norm: number; grads: number[] };
  clip2f32: { norm: number; grads: number[] };
}

let cached: Reference | undefined;
function reference(): Reference {
  if (cached !== undefined) return cached;
  const spec = {
    init: INIT,
    shapes: SHAPES,
    runs: {
      adamw: ADAMW,
      adamwLr: { ...ADAMW, lr_changes: LR_CHANGES },
      sgd: SGD_NESTEROV,
      sgdLr: { ...SGD_NESTEROV, lr_changes: LR_CHANGES },
      ...CLIPS,
    },
  };
  // JSON has no Infinity; Python's json reads the bare token.
  const input = JSON.stringify(spec, (_k, v: unknown) => (v === Infinity ? '__inf__' : v)).replaceAll('"__inf__"', 'Infinity');
  cached = JSON.parse(runPython(['-c', REFERENCE], { input })) as Reference;
  return cached;
}

function adamw(p: Params): AdamW {
  return new AdamW(
    [
      { params: [p.w1, p.b1], lr: ADAMW.groups[0]!.lr, weightDecay: ADAMW.groups[0]!.weight_decay },
      { params: [p.w2, p.b2], lr: ADAMW.groups[1]!.lr, weightDecay: ADAMW.groups[1]!.weight_decay },
    ],
    { betas: [ADAMW.betas[0]!, ADAMW.betas[1]!], eps: ADAMW.eps, amsgrad: false },
  );
}

function sgd(p: Params): SGD {
  return new SGD(
    [
      { params: [p.w1, p.b1], lr: SGD_NESTEROV.groups[0]!.lr, weightDecay: SGD_NESTEROV.groups[0]!.weight_decay },
      { params: [p.w2, p.b2], lr: SGD_NESTEROV.groups[1]!.lr, weightDecay: SGD_NESTEROV.groups[1]!.weight_decay },
    ],
    { momentum: SGD_NESTEROV.momentum, nesterov: true },
  );
}

function applyLrChanges(opt: Optimizer): (step: number) => void {
  return (step) => {
    for (const change of LR_CHANGES) {
      if (change.step !== step) continue;
      if (change.group === null) opt.setLr(change.lr);
      else opt.setLr(change.lr, change.group);
    }
  };
}

function expectTrajectory(actual: Trajectory, expected: Trajectory, what: string): void {
  expect(actual.params.length).toBe(expected.params.length);
  expectClose(actual.losses, expected.losses, { rtol: 1e-6, atol: 1e-12, what: `${what}: losses` });
  actual.params.forEach((p, s) => expectClose(p, expected.params[s]!, { rtol: 1e-6, atol: 1e-12, what: `${what}: parameters after step ${s + 1}` }));
}

function maxAbsDiff(a: number[], b: number[]): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('AdamW matches torch.optim.AdamW', () => {
  it('two parameter groups with their own lr and weight decay, non-default betas and eps, 5 steps', () => {
    const p = makeParams();
    const opt = adamw(p);
    try {
      const ours = train(p, opt, ADAMW.steps);
      expectTrajectory(ours, reference().adamw, 'AdamW');
      // The problem is not degenerate: parameters move, and the loss goes down.
      expect(maxAbsDiff(ours.params[4]!, PARAMS.flatMap((n) => INIT[n]))).toBeGreaterThan(0.05);
      expect(ours.losses[4]!).toBeLessThan(ours.losses[0]!);
    } finally {
      opt.dispose();
      disposeParams(p);
    }
  });

  it('setLr changes the following steps (one group, then all groups)', () => {
    const p = makeParams();
    const opt = adamw(p);
    try {
      const ours = train(p, opt, ADAMW.steps, applyLrChanges(opt));
      expect(opt.getLr(0)).toBe(0.005);
      expect(opt.getLr(1)).toBe(0.005);
      expectTrajectory(ours, reference().adamwLr, 'AdamW with lr changes');
      // The change is visible: from step 3 on, the run departs from the constant-lr one.
      expect(maxAbsDiff(ours.params[1]!, reference().adamw.params[1]!)).toBeLessThan(1e-12);
      expect(maxAbsDiff(ours.params[2]!, reference().adamw.params[2]!)).toBeGreaterThan(1e-4);
    } finally {
      opt.dispose();
      disposeParams(p);
    }
  });
});

describe('SGD matches torch.optim.SGD', () => {
  it('Nesterov momentum with per-group lr and weight decay, 5 steps', () => {
    const p = makeParams();
    const opt = sgd(p);
    try {
      expectTrajectory(train(p, opt, SGD_NESTEROV.steps), reference().sgd, 'SGD');
    } finally {
      opt.dispose();
      disposeParams(p);
    }
  });

  it('setLr changes the following steps', () => {
    const p = makeParams();
    const opt = sgd(p);
    try {
      expectTrajectory(train(p, opt, SGD_NESTEROV.steps, applyLrChanges(opt)), reference().sgdLr, 'SGD with lr changes');
    } finally {
      opt.dispose();
      disposeParams(p);
    }
  });

  it('rejects invalid learning rates and group indices', () => {
    const p = makeParams();
    const opt = sgd(p);
    try {
      expect(() => opt.setLr(-1)).toThrow(/setLr: expected a finite, non-negative learning rate/);
      expect(() => opt.setLr(Number.NaN)).toThrow(/setLr/);
      expect(() => opt.setLr(0.1, 2)).toThrow(/parameter group 2 out of range/);
      expect(() => opt.getLr(5)).toThrow(/parameter group 5 out of range/);
    } finally {
      opt.dispose();
      disposeParams(p);
    }
  });
});

describe('optimizer state round-trips through stateBytes/loadStateBytes', () => {
  for (const [name, make] of [
    ['AdamW', adamw],
    ['SGD', sgd],
  ] as const) {
    it(`${name}: a fresh optimizer that loads the state continues the run exactly`, () => {
      const a = makeParams();
      const optA = make(a);
      const b: Params[] = [];
      const opts: Optimizer[] = [];
      try {
        train(a, optA, 3);
        const state = optA.stateBytes();
        expect(state.byteLength).toBeGreaterThan(0);

        // Resumed: copies of the parameters, a new optimizer, the saved state.
        const resumed = copyParams(a);
        b.push(resumed);
        const optB = make(resumed);
        opts.push(optB);
        optB.loadStateBytes(state);

        // Control: the same copies and a new optimizer without the state.
        const fresh = copyParams(a);
        b.push(fresh);
        const optC = make(fresh);
        opts.push(optC);

        const continued = train(a, optA, 2);
        const fromState = train(resumed, optB, 2);
        const fromScratch = train(fresh, optC, 2);
        expect(fromState.params).toEqual(continued.params); // bit for bit
        expect(fromState.losses).toEqual(continued.losses);
        expect(maxAbsDiff(fromScratch.params[0]!, continued.params[0]!)).toBeGreaterThan(1e-6);

        // The reference agrees with the continued run too (steps 4 and 5).
        const ref = name === 'AdamW' ? reference().adamw : reference().sgd;
        expectTrajectory(fromState, { losses: ref.losses.slice(3), params: ref.params.slice(3) }, `${name} resumed`);
      } finally {
        optA.dispose();
        for (const o of opts) o.dispose();
        disposeParams(a);
        for (const p of b) disposeParams(p);
      }
    });
  }

  it('loading restores each group\'s learning rate and weight decay, as torch.optim does', () => {
    // libtorch 1.13's Optimizer::load alone drops the saved group options; ko_load restores
    // them, so the loaded optimizer continues with the saved lr (0.05 and 0.003, not 0.5).
    const a = makeParams();
    const optA = adamw(a);
    const b = copyParams(a);
    const optB = new AdamW(
      [
        { params: [b.w1, b.b1], lr: 0.5, weightDecay: 0.9 },
        { params: [b.w2, b.b2], lr: 0.5, weightDecay: 0.9 },
      ],
      { betas: [ADAMW.betas[0]!, ADAMW.betas[1]!], eps: ADAMW.eps },
    );
    try {
      train(a, optA, 2);
      optA.setLr(0.003, 1);
      const state = optA.stateBytes();
      copyInto(b, a);
      optB.loadStateBytes(state);
      expect([optB.getLr(0), optB.getLr(1)]).toEqual([ADAMW.groups[0]!.lr, 0.003]);
      // Weight decay is restored too: otherwise 0.9 would make the runs differ at once.
      expect(train(b, optB, 2).params).toEqual(train(a, optA, 2).params);
    } finally {
      optA.dispose();
      optB.dispose();
      disposeParams(a);
      disposeParams(b);
    }
  });

  it('state for a different group structure is an error, not a crash', () => {
    const a = makeParams();
    const optA = adamw(a);
    const b = copyParams(a);
    const optB = new AdamW([{ params: [b.w1, b.b1, b.w2, b.b2], lr: 0.01 }]);
    try {
      train(a, optA, 1);
      expect(() => optB.loadStateBytes(optA.stateBytes())).toThrow(/^ko_load: /);
      expect(() => optB.loadStateBytes(Buffer.from('not an archive'))).toThrow(/^ko_load: /);
    } finally {
      optA.dispose();
      optB.dispose();
      disposeParams(a);
      disposeParams(b);
    }
  });
});

describe('clipGradNorm matches torch.nn.utils.clip_grad_norm_', () => {
  for (const [name, cfg] of Object.entries(CLIPS) as Array<[keyof typeof CLIPS, (typeof CLIPS)[keyof typeof CLIPS]]>) {
    it(`${cfg.dtype}, max_norm ${cfg.max_norm}, norm_type ${cfg.norm_type}`, () => {
      const p = makeParams(cfg.dtype);
      try {
        lossAndBackward(p);
        const before = PARAMS.flatMap((n) => tidy(() => p[n].grad!.toArray()));
        const norm = clipGradNorm(PARAMS.map((n) => p[n]), cfg.max_norm, cfg.norm_type);
        const after = PARAMS.flatMap((n) => tidy(() => p[n].grad!.toArray()));
        const ref = reference()[name];
        const rtol = cfg.dtype === 'float32' ? 2e-6 : 1e-9;
        expectClose([norm], [ref.norm], { rtol, atol: 0, what: 'total norm' });
        expectClose(after, ref.grads, { rtol, atol: 1e-12, what: 'clipped gradients' });
        if (cfg.max_norm < norm) {
          // Clipped: the new joint norm is max_norm (up to torch's 1e-6 guard).
          const clippedNorm =
            cfg.norm_type === Infinity ? Math.max(...after.map(Math.abs)) : Math.sqrt(after.reduce((s, g) => s + g * g, 0));
          expect(clippedNorm).toBeCloseTo(cfg.max_norm, 5);
          expect(maxAbsDiff(after, before)).toBeGreaterThan(0);
        } else {
          expect(after).toEqual(before);
        }
      } finally {
        disposeParams(p);
      }
    });
  }

  it('a parameter without a gradient is skipped', () => {
    const p = makeParams();
    try {
      lossAndBackward(p);
      noGrad(() => p.b2.zeroGrad(true));
      const norm = clipGradNorm(PARAMS.map((n) => p[n]), 1e9);
      const expected = Math.sqrt(
        (['w1', 'b1', 'w2'] as const).reduce((s, n) => s + tidy(() => p[n].grad!.square().sum().item()), 0),
      );
      expect(norm).toBeCloseTo(expected, 12);
      expect(p.b2.grad).toBeNull();
    } finally {
      disposeParams(p);
    }
  });
});
