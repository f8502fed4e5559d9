/**
 * The loss registry and the weighted sum a run trains on.
 *
 * A run's `loss:` config is a list of entries, each a loss name, a weight and that loss's own
 * options: `[{name: infonce, weight: 1, temperature: 0.05}, {name: bce, weight: 0.5}]`.
 * `lossEntrySchema` validates one entry (a discriminated union on `name`, so an error points at
 * the offending option), and `createWeightedLoss` turns the list into one `WeightedLoss`
 * module whose forward gives `total = Σ_k w_k · L_k` plus each unweighted L_k for logging.
 *
 * Each loss declares the input it reads (`scores`, `tokens`, or for distillation `embeddings`,
 * `teacher_scores`, `layers`; see types.ts); `WeightedLoss`
 * hands each entry that input, and the config loader checks the run's task provides it.
 *
 * Adding a loss: write src/losses/<name>.ts (options schema + a subclass of one of the input
 * base classes in types.ts, with `lossName` and `citation`), add it to LOSSES and to lossEntrySchema's list, document it
 * in docs/losses.md.
 */
import { z } from 'zod';

import { Module } from '../engine/nn/index.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { BceLoss, bceOptionsSchema } from './bce.js';
import { InfonceLoss, infonceOptionsSchema } from './infonce.js';
import { VpMatrixLoss, vpMatrixOptionsSchema } from './vp-matrix.js';
import { MaskedLmLoss, maskedLmOptionsSchema } from './masked-lm.js';
import { EmbeddingMseLoss, embeddingMseOptionsSchema } from './embedding-mse.js';
import { SimilarityKlLoss, similarityKlOptionsSchema } from './similarity-kl.js';
import { MarginMseLoss, marginMseOptionsSchema } from './margin-mse.js';
import { HiddenMseLoss, hiddenMseOptionsSchema } from './hidden-mse.js';
import { AttentionKlLoss, attentionKlOptionsSchema } from './attention-kl.js';
import type { AnyLoss, LossFactoryOptions, LossInputName, LossInputs } from './types.js';

export {
  ScoredLoss,
  TokenLoss,
  EmbeddingLoss,
  DistillScoreLoss,
  LayerLoss,
  LOSS_INPUT_NAMES,
  TEACHER_LOSS_INPUTS,
  type AnyLoss,
  type LossFactoryOptions,
  type LossInputName,
  type LossInputs,
  type ScoredBatch,
  type TokenPredictionBatch,
  type EmbeddingDistillBatch,
  type DistillScoreBatch,
  type LayerDistillBatch,
} from './types.js';
export { MaskedLmLoss, maskedLmOptionsSchema, type MaskedLmOptions } from './masked-lm.js';
export { BceLoss, bceOptionsSchema, type BceOptions } from './bce.js';
export { InfonceLoss, infonceOptionsSchema, type InfonceOptions } from './infonce.js';
export { VpMatrixLoss, vpMatrixOptionsSchema, type VpMatrixOptions } from './vp-matrix.js';
export { EmbeddingMseLoss, embeddingMseOptionsSchema, type EmbeddingMseOptions } from './embedding-mse.js';
export { SimilarityKlLoss, similarityKlOptionsSchema, type SimilarityKlOptions } from './similarity-kl.js';
export { MarginMseLoss, marginMseOptionsSchema, type MarginMseOptions } from './margin-mse.js';
export { HiddenMseLoss, hiddenMseOptionsSchema, type HiddenMseOptions } from './hidden-mse.js';
export { AttentionKlLoss, attentionKlOptionsSchema, type AttentionKlOptions, ATTENTION_KL_EPS } from './attention-kl.js';

/** One registry entry: the options schema, the input it reads, a factory that validates then constructs, the source. */
export interface LossDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly schema: S;
  readonly citation: string;
  /** The field of `LossInputs` the loss reads. */
  readonly input: LossInputName;
  /** True when the loss learns a graded target for each positive (`ScoredBatch.positiveTarget`), so it can train on scored pairs. */
  readonly gradedTargets: boolean;
  /** Validates `options` (defaults applied; throws a ZodError) and builds the loss. */
  create(options?: z.input<S>, factory?: LossFactoryOptions): AnyLoss;
}

function define<S extends z.ZodType>(
  lossClass: { readonly lossName: string; readonly citation: string; readonly input: LossInputName; readonly gradedTargets?: boolean; new (options: z.output<S>, factory?: LossFactoryOptions): AnyLoss },
  schema: S,
): LossDefinition<S> {
  return {
    name: lossClass.lossName,
    schema,
    citation: lossClass.citation,
    input: lossClass.input,
    gradedTargets: lossClass.gradedTargets ?? false,
    create: (options, factory) => new lossClass(schema.parse(options ?? {}), factory),
  };
}

/** Every loss by its config name. */
export const LOSSES = {
  bce: define(BceLoss, bceOptionsSchema),
  infonce: define(InfonceLoss, infonceOptionsSchema),
  vp_matrix: define(VpMatrixLoss, vpMatrixOptionsSchema),
  masked_lm: define(MaskedLmLoss, maskedLmOptionsSchema),
  // Distillation (a teacher's outputs as targets):
  embedding_mse: define(EmbeddingMseLoss, embeddingMseOptionsSchema),
  similarity_kl: define(SimilarityKlLoss, similarityKlOptionsSchema),
  margin_mse: define(MarginMseLoss, marginMseOptionsSchema),
  hidden_mse: define(HiddenMseLoss, hiddenMseOptionsSchema),
  attention_kl: define(AttentionKlLoss, attentionKlOptionsSchema),
} as const;

export type LossName = keyof typeof LOSSES;
export const LOSS_NAMES = Object.keys(LOSSES) as LossName[];

const weightSchema = z.number().min(0).finite().default(1).describe('Weight w of this loss in the total Σ w·L.');
/**
 * Not an option of the loss itself but of the score matrix it reads: with several processes,
 * every rank's embeddings are gathered into one matrix (src/train/strategies/two-tower.ts).
 */
const gatherNegativesSchema = z
  .boolean()
  .default(false)
  .describe('With several processes (kiln train --nproc N), all-gather every rank\'s embeddings so the in-batch negatives are the whole batch, as in one process; no effect in one process. The score losses of a run share one matrix: set it on all of them or none.');

/** One `loss:` entry: `name` picks the member, whose other keys are that loss's options plus `weight`. */
export const lossEntrySchema = z.discriminatedUnion('name', [
  bceOptionsSchema.safeExtend({ name: z.literal('bce').describe(BceLoss.citation), weight: weightSchema, gather_negatives: gatherNegativesSchema }),
  infonceOptionsSchema.safeExtend({ name: z.literal('infonce').describe(InfonceLoss.citation), weight: weightSchema, gather_negatives: gatherNegativesSchema }),
  vpMatrixOptionsSchema.safeExtend({ name: z.literal('vp_matrix').describe(VpMatrixLoss.citation), weight: weightSchema, gather_negatives: gatherNegativesSchema }),
  maskedLmOptionsSchema.safeExtend({ name: z.literal('masked_lm').describe(MaskedLmLoss.citation), weight: weightSchema }),
  embeddingMseOptionsSchema.safeExtend({ name: z.literal('embedding_mse').describe(EmbeddingMseLoss.citation), weight: weightSchema }),
  similarityKlOptionsSchema.safeExtend({ name: z.literal('similarity_kl').describe(SimilarityKlLoss.citation), weight: weightSchema }),
  marginMseOptionsSchema.safeExtend({ name: z.literal('margin_mse').describe(MarginMseLoss.citation), weight: weightSchema }),
  hiddenMseOptionsSchema.safeExtend({ name: z.literal('hidden_mse').describe(HiddenMseLoss.citation), weight: weightSchema }),
  attentionKlOptionsSchema.safeExtend({ name: z.literal('attention_kl').describe(AttentionKlLoss.citation), weight: weightSchema }),
]);

/** A `loss:` entry as written in a config (defaults not yet applied). */
export type LossEntryInput = z.input<typeof lossEntrySchema>;
/** A validated `loss:` entry (defaults applied). */
export type LossEntry = z.output<typeof lossEntrySchema>;

/** True when the run's score losses gather negatives across processes (`gather_negatives` on every score loss). */
export function gathersNegatives(entries: readonly LossEntry[]): boolean {
  return entries.some((entry) => 'gather_negatives' in entry && entry.gather_negatives === true);
}

/** A whole `loss:` list: at least one entry. */
export const lossListSchema = z.array(lossEntrySchema).min(1);

/** Builds one loss from a (raw or validated) entry; `name` and `weight` are not loss options. */
export function createLoss(entry: LossEntryInput, factory: LossFactoryOptions = {}): AnyLoss {
  const { name, weight: _weight, ...rest } = lossEntrySchema.parse(entry);
  // gather_negatives shapes the batch (the strategy reads it), not the loss.
  const { gather_negatives: _gather, ...options } = rest as typeof rest & { gather_negatives?: boolean };
  const definition: LossDefinition = LOSSES[name];
  return definition.create(options, factory);
}

/** What `WeightedLoss.forward` returns. */
export interface WeightedLossOutput {
  /** Σ_k w_k · L_k: a 0-d tensor attached to the graph — call `backward()` on it. */
  total: Tensor;
  /** Each unweighted L_k by entry key (see `WeightedLoss.entries`), detached: for logging only. */
  parts: Record<string, Tensor>;
}

export interface WeightedEntry {
  /** The key of this entry in `parts` and in parameter names: the loss name, `name_2`, … for repeats. */
  readonly key: string;
  readonly name: LossName;
  readonly weight: number;
  readonly input: LossInputName;
  readonly loss: AnyLoss;
}

/**
 * A weighted sum of losses, each over the input it declares. Each loss is a registered child module under
 * its entry key, so learnable loss parameters appear as e.g. `infonce.log_temperature` in
 * `parameters()` and `stateDict()`.
 *
 * Ownership: `forward` releases every temporary it makes; the tensors it returns (`total` and
 * each of `parts`) are created in the caller's innermost `tidy` scope and freed when it closes,
 * so `tidy(() => { const { total } = loss.forward(batch); total.backward(); })` leaks nothing.
 * Outside any scope the caller owns them and disposes them (`dispose(output)` frees all).
 * `parts` are detached views of each loss's value: reading one (`.item()`) never touches the
 * graph, and keeping one past the step keeps no graph alive.
 */
export class WeightedLoss extends Module {
  readonly entries: readonly WeightedEntry[];

  constructor(entries: ReadonlyArray<{ name: LossName; weight: number; loss: AnyLoss }>) {
    super();
    if (entries.length === 0) throw new Error('WeightedLoss: at least one loss is needed');
    const seen = new Map<string, number>();
    this.entries = entries.map(({ name, weight, loss }) => {
      const count = (seen.get(name) ?? 0) + 1;
      seen.set(name, count);
      const key = count === 1 ? name : `${name}_${count}`;
      this.registerModule(key, loss);
      return { key, name, weight, input: LOSSES[name].input, loss };
    });
  }

  /** The inputs this sum reads: a strategy must provide each. */
  get inputs(): LossInputName[] {
    return [...new Set(this.entries.map((e) => e.input))];
  }

  /** The weighted total and each unweighted part; see the class comment for who owns them. */
  forward(inputs: LossInputs): WeightedLossOutput {
    return tidy(() => {
      const parts: Record<string, Tensor> = {};
      let total: Tensor | null = null;
      for (const { key, weight, input, loss } of this.entries) {
        const batch = inputs[input];
        if (batch === undefined) throw new Error(`loss '${key}' reads '${input}', which this training strategy did not provide`);
        const value = (loss.forward as (b: NonNullable<LossInputs[typeof input]>) => Tensor)(batch);
        parts[key] = value.detach();
        const term = weight === 1 ? value : value.mul(weight);
        total = total === null ? term : total.add(term);
      }
      return { total: total!, parts };
    });
  }

  override extraRepr(): string {
    return this.entries.map((e) => `${e.key}×${e.weight}`).join(' + ');
  }
}

/** Validates a `loss:` list and builds its `WeightedLoss` (parameters made per `factory`). */
export function createWeightedLoss(entries: readonly LossEntryInput[], factory: LossFactoryOptions = {}): WeightedLoss {
  const parsed = lossListSchema.parse(entries);
  return new WeightedLoss(parsed.map((entry) => ({ name: entry.name, weight: entry.weight, loss: createLoss(entry, factory) })));
}
