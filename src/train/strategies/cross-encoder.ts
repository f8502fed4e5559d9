/**
 * The cross-encoder strategy: each query of a micro-batch is scored with its positive and k
 * negatives, drawn from the candidates its first-stage retriever mined
 * (../cross-encoder-negatives.ts), in one joint encoding per pair.
 *
 *   s_ij = CrossEncoder([CLS] q_i [SEP] d_ij [SEP])    j = 0: the positive, j = 1..k: negatives
 *   S    = [s_ij]                                       [B, 1 + k], positiveIndex = 0
 *   loss = Σ w_l · loss_l(S)                            (bce on logits by default; infonce is the
 *                                                        listwise alternative)
 *   T    = [t_ij], t_ij = bi(q_i, d_ij)                 with a `teacher_scores` loss (similarity_kl,
 *                                                        margin_mse): the mining two-tower run's
 *                                                        scores of the same pairs, as soft labels
 *
 * A residual cross-encoder (`residualTemperature` τ, config `cross_encoder.residual`) learns a
 * correction to the mining run's scores: the losses see S = T/τ + [s_ij], so the classifier
 * (zero at the start) only has to learn where the run is wrong (src/eval/rerank.ts re-ranks
 * with the same sum).
 *
 * `randomNegatives` of the k are drawn uniformly from the positive's document type instead of
 * the mined pool (the mix of ../cross-encoder-negatives.ts).
 *
 * The k negatives of step s are drawn from Rng.derive(seed, `cross-encoder:s:m`): a pure
 * function of the step, so a resumed run draws the same ones.
 */
import { fromTypedArray, zeros, type Tensor } from '../../engine/index.js';
import { Rng } from '../../data/rng.js';
import type { WordPieceTokenizer } from '../../data/tokenizer.js';
import { padPairsToTensors, type CrossEncoderModel } from '../../models/index.js';
import type { LossInputs, WeightedLoss } from '../../losses/index.js';
import type { StepContext, StepOutput, TrainStrategy } from '../strategy.js';
import type { PairBatchSource } from './two-tower.js';
import { drawCandidates, type CandidateSource } from '../cross-encoder-negatives.js';

export interface CrossEncoderStrategyOptions {
  model: CrossEncoderModel;
  loss: WeightedLoss;
  /** Query and positive document text of each training pair. */
  /** Training pairs; `label` (scored pairs) is the positive's graded target, default 1. */
  pairs: ReadonlyArray<{ query: string; doc: string; label?: number }>;
  /** Mined negative candidates per pair (indices into `poolTexts`), and random ones. */
  candidates: CandidateSource;
  /** Pool index of each training pair's positive document (its teacher score's column 0). */
  positivePoolIndex: Int32Array;
  poolTexts: readonly string[];
  k: number;
  /** How many of the k negatives are random rather than mined. */
  randomNegatives: number;
  batches: PairBatchSource;
  tokenizer: WordPieceTokenizer;
  maxLength: number;
  seed: number;
  device: 'cpu' | 'cuda';
  /** τ of a residual cross-encoder (scores T/τ + s); null = its logits alone. */
  residualTemperature: number | null;
}

export class CrossEncoderStrategy implements TrainStrategy {
  readonly modules;
  /** Whether a loss reads the mining bi-encoder's scores of the same pairs (`teacher_scores`). */
  readonly #teacherScores: boolean;

  constructor(private readonly o: CrossEncoderStrategyOptions) {
    this.#teacherScores = o.loss.inputs.includes('teacher_scores') || o.residualTemperature !== null;
    this.modules = [
      { name: 'model', module: o.model },
      { name: 'loss', module: o.loss },
    ];
  }

  step(context: StepContext): StepOutput {
    const { k, tokenizer } = this.o;
    const items = this.o.batches.next();
    const rng = Rng.derive(this.o.seed, `cross-encoder:${context.step}:${context.slice}`);
    const encoded: Array<{ ids: Int32Array; typeIds: Int32Array }> = [];
    const scored: number[][] = [];
    const pools = this.o.candidates.candidatesOf(items);
    for (const [row, i] of items.entries()) {
      const { query, doc } = this.o.pairs[i]!;
      encoded.push(tokenizer.encodePair(query, doc, this.o.maxLength));
      const pool = pools[row]!;
      if (pool.length === 0) throw new Error(`training pair ${i} (${JSON.stringify(query)}) has no negative candidates`);
      const mined = drawCandidates(rng, pool, k - this.o.randomNegatives);
      const random = this.o.candidates.drawRandom(i, rng, this.o.randomNegatives, mined);
      // A type too small for distinct random documents falls back to more mined ones.
      const negatives = random.length === this.o.randomNegatives ? [...mined, ...random] : drawCandidates(rng, pool, k);
      for (const negative of negatives) encoded.push(tokenizer.encodePair(query, this.o.poolTexts[negative]!, this.o.maxLength));
      scored.push([this.o.positivePoolIndex[i]!, ...negatives]);
    }
    const b = items.length;
    const batch = padPairsToTensors(encoded, tokenizer.padId, this.o.device);
    const logits = this.o.model.score(batch).view(b, 1 + k);
    let teacher: Tensor | null = null;
    if (this.#teacherScores) {
      const values = this.o.candidates.teacherScores([...items], scored);
      if (values === null) throw new Error(`${this.o.residualTemperature === null ? 'a teacher_scores loss' : 'a residual cross-encoder'} needs scores from ${this.o.candidates.description}, which has none`);
      teacher = fromTypedArray(values, { shape: [b, 1 + k], device: this.o.device });
    }
    const residual = this.o.residualTemperature;
    const scores = residual === null ? logits : logits.add(teacher!.div(residual));
    const positiveIndex = zeros([b], { dtype: 'int64', device: this.o.device });
    const labels = Array.from(items, (i) => this.o.pairs[i]!.label);
    const positiveTarget = labels.every((l) => l === undefined) ? undefined : fromTypedArray(Float32Array.from(labels, (l) => l ?? 1), { shape: [b], device: this.o.device });
    const inputs: LossInputs = { scores: { scores, positiveIndex, ...(positiveTarget === undefined ? {} : { positiveTarget }) } };
    if (teacher !== null) inputs.teacher_scores = { student: scores, teacher, positiveIndex };
    const { total, parts } = this.o.loss.forward(inputs);
    const logs: Record<string, number> = {};
    for (const [name, value] of Object.entries(parts)) logs[`loss_${name}`] = value.item();
    // Share of queries whose positive outscores every one of its negatives.
    logs.pair_accuracy = scores.argmax(1).eq(positiveIndex).float().mean().item();
    return { loss: total, logs, examples: b, tokens: batch.inputIds.numel };
  }

  state(): unknown {
    return { batches: this.o.batches.state() };
  }

  restore(state: unknown): void {
    this.o.batches.restore((state as { batches: unknown }).batches);
  }

  dispose(): void {
    this.o.candidates.dispose();
  }
}
