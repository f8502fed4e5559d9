/**
 * Interaction heads: how a query embedding q and a document embedding d become a score.
 *
 *   cosine:        s = q·d / (‖q‖‖d‖)                       (Sentence-BERT; Reimers & Gurevych 2019)
 *   dot:           s = q·d                                   (DPR; Karpukhin et al. 2020, arXiv 2004.04906)
 *   hadamard_mlp:  s = w₂ᵀ GELU(W₁ (q ⊙ d) + b₁) + b₂          (JUDE's light interaction head over
 *                  the element-wise product; LinkedIn 2025)
 *
 * `matrix` scores every query against every candidate ([B, D] × [C, D] → [B, C]); `pairs`
 * scores aligned rows ([N, D] × [N, D] → [N]). `embed` is what a retrieval index stores:
 * cosine normalises, so ranking by dot product over stored vectors equals ranking by cosine.
 */
import { Module, Linear } from '../engine/nn/index.js';
import type { Tensor } from '../engine/index.js';
import type { HeadConfig } from './config.js';

export abstract class InteractionHead extends Module {
  /** Whether ranking a corpus can use a dot product of stored `embed` vectors (an ANN index). */
  abstract readonly decomposable: boolean;
  abstract matrix(queries: Tensor, candidates: Tensor): Tensor;
  abstract pairs(queries: Tensor, docs: Tensor): Tensor;
  embed(x: Tensor): Tensor {
    return x;
  }
}

class CosineHead extends InteractionHead {
  readonly decomposable = true;
  override embed(x: Tensor): Tensor {
    return x.normalize({ dim: -1 });
  }
  matrix(queries: Tensor, candidates: Tensor): Tensor {
    return this.embed(queries).matmul(this.embed(candidates).transpose(0, 1));
  }
  pairs(queries: Tensor, docs: Tensor): Tensor {
    return this.embed(queries).mul(this.embed(docs)).sum([-1]);
  }
}

class DotHead extends InteractionHead {
  readonly decomposable = true;
  matrix(queries: Tensor, candidates: Tensor): Tensor {
    return queries.matmul(candidates.transpose(0, 1));
  }
  pairs(queries: Tensor, docs: Tensor): Tensor {
    return queries.mul(docs).sum([-1]);
  }
}

class HadamardMlpHead extends InteractionHead {
  readonly decomposable = false;
  readonly hidden: Linear;
  readonly out: Linear;

  constructor(width: number, mlpHidden: number) {
    super();
    this.hidden = this.registerModule('hidden', new Linear(width, mlpHidden));
    this.out = this.registerModule('out', new Linear(mlpHidden, 1));
  }

  pairs(queries: Tensor, docs: Tensor): Tensor {
    return this.out.forward(this.hidden.forward(queries.mul(docs)).gelu()).squeeze(-1);
  }

  matrix(queries: Tensor, candidates: Tensor): Tensor {
    const [b, d] = queries.shape as [number, number];
    const c = candidates.shape[0]!;
    const product = queries.unsqueeze(1).mul(candidates.unsqueeze(0)); // [B, C, D]
    return this.out.forward(this.hidden.forward(product.reshape(b * c, d)).gelu()).view(b, c);
  }
}

export const HEADS: Record<HeadConfig['type'], (width: number, config: HeadConfig) => InteractionHead> = {
  cosine: () => new CosineHead(),
  dot: () => new DotHead(),
  hadamard_mlp: (width, config) => new HadamardMlpHead(width, config.mlpHidden),
};

export function createHead(width: number, config: HeadConfig): InteractionHead {
  return HEADS[config.type](width, config);
}
