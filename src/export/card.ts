/**
 * The model card (`model.json`) that `kiln export` writes beside the ONNX graphs: everything a
 * consumer needs to run the model (graph files, input names, prompts, maximum lengths,
 * tokenizer) and to know where it came from (source run, metrics, Kiln version, a model id
 * that changes whenever the weights or the graph change).
 *
 * Exported directory:
 *   model.json       this card
 *   tokenizer.json   the Hugging Face tokenizer the model was trained with
 *   model.onnx       the graph (a two-tower model with separate towers has query.onnx and doc.onnx)
 */
import { z } from 'zod';

export const CARD_FORMAT = 'kiln-onnx' as const;
export const CARD_FORMAT_VERSION = 1 as const;

const encoderSchema = z.object({
  vocabSize: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  numLayers: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  intermediateSize: z.number().int().positive(),
  maxPositions: z.number().int().positive(),
  typeVocabSize: z.number().int().positive(),
  layerNormEps: z.number().positive(),
  padId: z.number().int().nonnegative(),
});

const common = {
  format: z.literal(CARD_FORMAT),
  formatVersion: z.literal(CARD_FORMAT_VERSION),
  /** `<source run id>@<first 12 hex digits of the SHA-256 of the graph files>`. */
  modelId: z.string().min(1),
  kilnVersion: z.string(),
  exportedAt: z.string(),
  opset: z.number().int(),
  quantization: z.enum(['none', 'int8']),
  parameters: z.number().int().nonnegative(),
  source: z.object({ run: z.string(), path: z.string() }),
  /** The source run's final metrics (summary.json), for reference; empty when it had none. */
  metrics: z.record(z.string(), z.number()),
  tokenizer: z.literal('tokenizer.json'),
  encoder: encoderSchema,
  pooling: z.enum(['mean', 'cls', 'last']),
  /** For a distilled student (task: distill): its teacher, how much smaller it is, and what it kept (summary.json's report). */
  distillation: z
    .object({
      teacher: z.string(),
      teacherKind: z.enum(['bi-encoder', 'cross-encoder']),
      teacherParameters: z.number().int().positive(),
      /** 1 − student parameters / teacher parameters. */
      reduction: z.number(),
      /** Student metric / teacher metric, per metric. */
      retention: z.record(z.string(), z.number()),
      /** (after − before) / (teacher − before), per metric, where the run had a baseline. */
      gapBridged: z.record(z.string(), z.number()),
    })
    .optional(),
  /** What `kiln export` verified before writing the directory (absent when checks were skipped). */
  checks: z
    .object({
      parity: z.object({ inputs: z.string(), outputs: z.number(), maxAbsDiff: z.number(), minCosine: z.number(), criterion: z.string(), passed: z.boolean() }).optional(),
      evaluation: z.object({ eager: z.record(z.string(), z.number()), exported: z.record(z.string(), z.number()), maxDropPoints: z.number(), criterion: z.string(), passed: z.boolean() }).optional(),
    })
    .optional(),
};

export const twoTowerCardSchema = z.object({
  ...common,
  kind: z.literal('two-tower'),
  towers: z.enum(['shared', 'separate']),
  head: z.enum(['cosine', 'dot', 'hadamard_mlp']),
  /** Whether the output vectors are unit-norm (the cosine head): a dot product is then the model's score. */
  normalized: z.boolean(),
  dimension: z.number().int().positive(),
  prompts: z.record(z.string(), z.string()),
  maxLength: z.object({ query: z.number().int().min(2), doc: z.number().int().min(2) }),
  /** Graph file per side (the same file for shared towers). Inputs input_ids, attention_mask (int64 [batch, sequence]); output embedding (float32 [batch, dimension]). */
  graphs: z.object({ query: z.string(), doc: z.string() }),
});

export const crossEncoderCardSchema = z.object({
  ...common,
  kind: z.literal('cross-encoder'),
  maxLength: z.object({ pair: z.number().int().min(3) }),
  /** Inputs input_ids, attention_mask, token_type_ids (int64 [batch, sequence]); output score (float32 [batch], a logit). */
  graphs: z.object({ score: z.string() }),
});

export const modelCardSchema = z.discriminatedUnion('kind', [twoTowerCardSchema, crossEncoderCardSchema]);

export type TwoTowerCard = z.infer<typeof twoTowerCardSchema>;
export type CrossEncoderCard = z.infer<typeof crossEncoderCardSchema>;
export type ModelCard = z.infer<typeof modelCardSchema>;
export type CardDistillation = NonNullable<ModelCard['distillation']>;

/** Parses a card, with an error naming the file and the first bad key. */
export function parseModelCard(value: unknown, file: string): ModelCard {
  const parsed = modelCardSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}; expected a model card written by \`kiln export\``);
  }
  return parsed.data;
}
