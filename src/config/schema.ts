/**
 * The run configuration: one zod schema, the single source of truth for validation, defaults,
 * the reference in docs/config.md and `kiln train --help` (both generated from the
 * `.describe()` texts here by src/config/docs.ts).
 *
 * YAML keys are snake_case. Recipes, losses and metrics are looked up in their registries, so a
 * new recipe, loss or metric is configurable without touching this file: a recipe's options are
 * checked against that recipe's own schema, and each loss entry is a member of the losses'
 * discriminated union.
 */
import { z } from 'zod';

import { RECIPES } from '../data/recipes/index.js';
import { lossEntrySchema } from '../losses/index.js';
import { parseMetricName } from '../eval/metrics/index.js';
import { LEXICAL_NAMES } from '../eval/lexical.js';
import { DEFAULT_HYBRID, FUSION_METHODS } from '../eval/fusion.js';
import { ENCODER_PRESETS } from '../models/config.js';
import { LOSSES, TEACHER_LOSS_INPUTS } from '../losses/index.js';
import { TASK_NAMES, TASK_SPECS } from './tasks.js';

const positiveInt = z.number().int().min(1);

/** Checks `options` against the named recipe's schema and reports problems under `options.*`. */
function checkRecipeOptions(value: { recipe: string; options: Record<string, unknown> }, ctx: z.RefinementCtx, kinds: readonly string[]): void {
  const recipe = (RECIPES as Record<string, (typeof RECIPES)[keyof typeof RECIPES] | undefined>)[value.recipe];
  if (recipe === undefined) {
    ctx.addIssue({ code: 'custom', path: ['recipe'], message: `unknown recipe '${value.recipe}'; expected one of: ${Object.keys(RECIPES).join(', ')}` });
    return;
  }
  if (!kinds.includes(recipe.kind)) {
    ctx.addIssue({ code: 'custom', path: ['recipe'], message: `recipe '${value.recipe}' yields ${recipe.kind}; expected a recipe that yields ${kinds.join(' or ')}` });
    return;
  }
  const parsed = recipe.options.safeParse(value.options);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      ctx.addIssue({ ...issue, path: ['options', ...issue.path] } as z.core.$ZodRawIssue);
    }
  }
}

const trainRecipeSchema = z
  .object({
    recipe: z.string().describe('Name of a training recipe (see datasets/README.md): Kiln\'s datasets (e.g. esco-occupations; domain-corpus for mlm) or your own files (pairs, triplets, scored-pairs, retrieval)'),
    options: z.record(z.string(), z.unknown()).default({}).describe("The recipe's own options"),
    weight: z.number().positive().max(100).default(1).describe('With data.batching per_source: multiplies how often this recipe is drawn (1 = in proportion to its size)'),
    exclude_eval_queries: z
      .boolean()
      .default(false)
      .describe("Drop this recipe's pairs whose query equals an evaluation query (for recipes drawn from the same corpus as an evaluation split, e.g. SkillSpan sentences)"),
  })
  .strict()
  .superRefine((value, ctx) => checkRecipeOptions(value, ctx, ['pairs', 'corpus', 'retrieval', 'scored-pairs']));

const hybridFields = {
  lexical: z.enum(LEXICAL_NAMES).describe('The lexical ranker fused with the dense model: bm25 (words) or tfidf_char (character 3–5-grams)'),
  method: z.enum(FUSION_METHODS).describe('rrf: weighted reciprocal rank fusion; weighted: weighted sum of min–max normalised scores'),
  weight: z.number().min(0).max(1).describe("The dense model's weight w in [0, 1]; the lexical ranker gets 1 − w (0.5 with rrf is plain RRF)"),
  k: z.number().positive().describe("RRF's rank offset: w / (k + rank)"),
  window: positiveInt.max(10_000).describe('Candidates taken from each ranker before fusing'),
};

const hybridSchema = z
  .object({
    lexical: hybridFields.lexical.default(DEFAULT_HYBRID.lexical),
    method: hybridFields.method.default(DEFAULT_HYBRID.method),
    weight: hybridFields.weight.default(DEFAULT_HYBRID.weight),
    k: hybridFields.k.default(DEFAULT_HYBRID.k),
    window: hybridFields.window.default(DEFAULT_HYBRID.window),
  })
  .strict();

/** A split's own hybrid settings: any subset, laid over eval.hybrid. */
const splitHybridSchema = z.object(hybridFields).partial().strict();

const evalSettingsSchema = z
  .object({
    lexical: z
      .object({
        fields: z
          .array(z.enum(['text', 'labels']))
          .min(1)
          .default(['text', 'labels'])
          .describe("Corpus fields the lexical rankers index: text (e.g. ESCO's preferred label) and labels (its alternative labels)"),
        match: z
          .enum(['best', 'joined'])
          .default('best')
          .describe("best: a document scores as its best-matching label; joined: all its labels as one text (docs/metrics.md says why best is the default)"),
      })
      .strict()
      .default({ fields: ['text', 'labels'], match: 'best' })
      .describe('How lexical rankers (BM25, character TF-IDF) see a corpus document'),
    hybrid: hybridSchema
      .nullable()
      .default(null)
      .describe('Fuse the dense model with a lexical ranker on every retrieval split (null = off); metrics appear as <eval name>/hybrid/<metric>'),
  })
  .strict();

const evalSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9_-]+$/, 'lower-case letters, digits, _ and - only').describe('Name used in metric keys: <name>/<metric>'),
    recipe: z.string().describe('A retrieval or scored-pairs recipe: Kiln\'s (jobbert-titles, skill-extraction, stsb) or your own files (retrieval, scored-pairs)'),
    options: z.record(z.string(), z.unknown()).default({}).describe("The recipe's own options"),
    metrics: z
      .array(z.string())
      .min(1)
      .superRefine((names, ctx) => {
        names.forEach((name, i) => {
          try {
            parseMetricName(name);
          } catch (error) {
            ctx.addIssue({ code: 'custom', path: [i], message: (error as Error).message });
          }
        });
      })
      .describe('Metrics to report, e.g. [mrr, recall@5, ndcg@10, rp@5, roc_auc, spearman]'),
    max_queries: positiveInt.optional().describe('Evaluate a seeded sample of this many queries (faster evaluation during training)'),
    hybrid: splitHybridSchema.optional().describe("This split's hybrid settings, laid over eval.hybrid (e.g. {lexical: bm25} for job titles); given alone, they turn the hybrid on for this split"),
  })
  .strict()
  .superRefine((value, ctx) => checkRecipeOptions(value, ctx, ['retrieval', 'scored-pairs']));

const dataSchema = z
  .object({
    vocab: z.string().default('bert-vocab/vocab.txt').describe('WordPiece vocab.txt, relative to the data root (or absolute)'),
    max_length: z.number().int().min(4).max(4096).default(32).describe('Maximum query tokens, [CLS] and [SEP] included; longer inputs are truncated'),
    doc_max_length: z.number().int().min(4).max(4096).optional().describe('Maximum document tokens (default: max_length)'),
    padding: z.enum(['longest', 'max_length']).default('longest').describe('Pad each batch to its longest sequence, or always to the maximum length'),
    bucket_window: positiveInt.default(20).describe('Batches per length-bucketing window (1 = no bucketing)'),
    batching: z
      .enum(['mixed', 'per_source'])
      .default('mixed')
      .describe('mixed: batches draw from all training recipes together; per_source: each batch comes from one recipe, chosen in proportion to its size (harder in-batch negatives)'),
    on_bad_row: z.enum(['fail', 'skip']).default('fail').describe('A malformed row fails the run, or is skipped and counted'),
    train: z.array(trainRecipeSchema).min(1).describe('Training recipes; their pairs (or texts, for mlm) are pooled'),
    eval: z.array(evalSchema).default([]).describe('Evaluation splits, run every train.eval_every steps and at the end'),
    hard_negatives: z
      .object({
        k: z.number().int().min(0).max(64).default(0).describe('Mined hard negatives per query (0 = in-batch negatives only)'),
        refresh_every: positiveInt.default(500).describe('Re-embed the document pool every this many steps'),
        start_step: z.number().int().min(0).default(0).describe('First step at which mined negatives are used'),
      })
      .strict()
      .default({ k: 0, refresh_every: 500, start_step: 0 })
      .describe('Hard negatives: top-k pool documents by the current model, positives excluded'),
  })
  .strict();

const modelSchema = z
  .object({
    preset: z.enum(Object.keys(ENCODER_PRESETS) as [keyof typeof ENCODER_PRESETS, ...(keyof typeof ENCODER_PRESETS)[]]).optional().describe('Encoder size preset; explicit sizes override it'),
    hidden_size: positiveInt.optional().describe('Hidden width (required without a preset)'),
    num_layers: positiveInt.optional().describe('Transformer layers (required without a preset)'),
    num_heads: positiveInt.optional().describe('Attention heads; must divide hidden_size (required without a preset)'),
    intermediate_size: positiveInt.optional().describe('Feed-forward width (required without a preset)'),
    max_positions: positiveInt.default(512).describe('Position embeddings'),
    type_vocab_size: positiveInt.default(2).describe('Token type embeddings'),
    hidden_dropout: z.number().min(0).max(1).default(0.1).describe('Dropout on embeddings and sub-layer outputs'),
    attention_dropout: z.number().min(0).max(1).default(0.1).describe('Dropout on attention probabilities'),
    layer_norm_eps: z.number().positive().default(1e-12).describe('LayerNorm epsilon'),
    init_std: z.number().positive().default(0.02).describe('Standard deviation of the normal weight init'),
    pooling: z.enum(['mean', 'cls', 'last']).default('mean').describe('Pooling of token states into one vector'),
    towers: z.enum(['shared', 'separate']).default('shared').describe('One encoder for both sides, or one per side'),
    prompts: z
      .record(z.string(), z.string().refine((t) => t.includes('{text}'), 'a prompt template must contain {text}'))
      .default({})
      .describe('Prompt template per input type, e.g. {title: "job title: {text}"}'),
    init_from: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'Initial encoder weights: a run directory (runs/<id>, or runs/<name> for the newest completed run of that name, e.g. a task: mlm pretraining run) or a Hugging Face BERT directory (config.json, model.safetensors, vocab.txt or tokenizer.json). Its sizes and vocabulary replace the ones above; tensors load by name and the rest stay newly initialised',
      ),
    head: z
      .object({
        type: z.enum(['cosine', 'dot', 'hadamard_mlp']).default('cosine').describe('Interaction head'),
        mlp_hidden: positiveInt.default(256).describe('Hidden width of the hadamard_mlp head'),
      })
      .strict()
      .default({ type: 'cosine', mlp_hidden: 256 }),
  })
  .strict()
  .superRefine((m, ctx) => {
    const sizes = ['hidden_size', 'num_layers', 'num_heads', 'intermediate_size'] as const;
    if (m.preset === undefined) {
      for (const key of sizes) {
        if (m[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `required when model.preset is not set (presets: ${Object.keys(ENCODER_PRESETS).join(', ')})` });
      }
    }
    const preset = m.preset === undefined ? undefined : ENCODER_PRESETS[m.preset];
    const hidden = m.hidden_size ?? preset?.hiddenSize;
    const heads = m.num_heads ?? preset?.numHeads;
    if (hidden !== undefined && heads !== undefined && hidden % heads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['num_heads'], message: `${heads} heads do not divide hidden_size ${hidden}` });
    }
  });

const trainSchema = z
  .object({
    steps: positiveInt.describe('Optimizer steps'),
    batch_size: z
      .number()
      .int()
      .min(2)
      .default(32)
      .describe('Examples per optimizer step, cut into grad_accum micro-batches and shared among the processes of kiln train --nproc (in-batch negatives come from a micro-batch, or with loss gather_negatives from every process\'s micro-batch)'),
    grad_accum: positiveInt.default(1).describe('Micro-batches each process cuts its share of the batch into (equal slices; batch_size must divide evenly): less memory, the same examples per step'),
    zero: z
      .union([z.literal(0), z.literal(1)])
      .default(0)
      .describe('1: partition the AdamW state across the processes of a data-parallel run (ZeRO stage 1); each keeps and updates only its share. No effect in one process'),
    lr: z.number().positive().max(1).default(5e-4).describe('Peak learning rate'),
    weight_decay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay (not applied to biases and LayerNorm)'),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]).describe('AdamW betas'),
    eps: z.number().positive().default(1e-6).describe('AdamW epsilon'),
    warmup_steps: z.number().int().min(0).default(0).describe('Linear warm-up steps'),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine').describe('Decay after warm-up (warm-up + linear decay is the slanted triangular schedule)'),
    min_lr_ratio: z.number().min(0).max(1).default(0).describe('Final learning rate as a fraction of lr'),
    clip_grad_norm: z.number().positive().nullable().default(1).describe('Clip the global gradient norm (null = off)'),
    precision: z
      .enum(['fp32', 'bf16', 'auto'])
      .default('fp32')
      .describe('bf16 = mixed precision through libtorch autocast; auto = bf16 on CUDA or where the CPU has bf16 instructions (avx512_bf16, amx_bf16, Arm bf16; kiln info shows them), fp32 elsewhere, where CPU bf16 is many times slower. The run saves what auto chose'),
    threads: z.union([z.literal('auto'), positiveInt]).default('auto').describe('libtorch intra-op threads (auto = the fastest measured policy)'),
    device: z.enum(['cpu', 'cuda']).default('cpu').describe('Where tensors live'),
    log_every: positiveInt.default(10).describe('Write train metrics every this many steps'),
    eval_every: z.number().int().min(0).default(0).describe('Evaluate every this many steps (0 = only at the end)'),
    checkpoint_every: positiveInt.default(500).describe('Write a resumable checkpoint every this many steps'),
    mask_same_group: z.boolean().default(true).describe('Exclude in-batch items of the same concept as false negatives'),
    early_stopping: z
      .object({
        metric: z.string().describe('A metric key <eval name>/<metric>, e.g. jobbert/mrr'),
        mode: z.enum(['max', 'min']).default('max'),
        patience: positiveInt.default(3).describe('Evaluations without improvement before stopping'),
        min_delta: z.number().min(0).default(0),
      })
      .strict()
      .nullable()
      .default(null)
      .describe('Stop when the metric stops improving'),
  })
  .strict();

const runReference = z
  .string()
  .regex(/^(bm25|run:.+)$/, 'bm25 or run:<run directory>');

const mlmSchema = z
  .object({
    probability: z.number().gt(0).lt(1).default(0.15).describe('Fraction of tokens chosen for prediction; of those 80% become [MASK], 10% a random token, 10% stay (BERT)'),
    whole_word: z.boolean().default(false).describe('Choose whole words: all WordPiece pieces of a chosen word are predicted together'),
    held_out: positiveInt.default(512).describe('Packed sequences held out of training to measure MLM loss and masked-token accuracy (heldout/mlm_loss, heldout/mlm_accuracy)'),
  })
  .strict();

const crossEncoderSchema = z
  .object({
    negatives: z
      .object({
        source: runReference.default('bm25').describe('Who mines the negatives: bm25, or run:<dir> for a trained two-tower run (its nearest documents; run:runs/<name> = the newest completed run of that name)'),
        k: z.number().int().min(1).max(64).default(3).describe('Negatives per positive'),
        pool: positiveInt.max(1000).default(30).describe('Candidates retrieved per query; the k negatives are drawn from them (the positive and same-concept documents excluded)'),
        random: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('How many of the k negatives are drawn each step at random from all documents of the positive\'s type instead of the mined pool: mined negatives alone teach the miner\'s signature (BM25: shared words mean negative)'),
        max_relative_score: z
          .number()
          .gt(0)
          .max(1)
          .nullable()
          .default(null)
          .describe(
            "Positive-aware mining (NV-Retriever's TopK-PercPos, arXiv 2407.15831): drop mined candidates that the mining run scores at or above this fraction of the query's positive (likely unlabelled positives, such as ESCO near-synonyms); 0.95 is the paper's choice, null keeps every candidate. Needs source run:<dir>",
          ),
      })
      .strict()
      .refine((n) => n.random <= n.k, { message: 'random must be at most k (it counts the random ones among the k negatives)', path: ['random'] })
      .refine((n) => n.max_relative_score === null || n.source !== 'bm25', {
        message: "filters candidates by the mining run's scores, and BM25's are not on a model's scale; set source to run:<dir>, or remove it",
        path: ['max_relative_score'],
      })
      .default({ source: 'bm25', k: 3, pool: 30, random: 0, max_relative_score: null }),
    rerank: z
      .object({
        first_stage: runReference.default('bm25').describe('The retriever whose candidates the cross-encoder re-ranks in evaluation: bm25 or run:<dir>'),
        top_k: positiveInt.max(1000).default(50).describe('Candidates re-ranked per query; the rest keep the first stage\'s order below them'),
        max_queries: positiveInt
          .nullable()
          .default(null)
          .describe('At most this many queries per split in every re-ranking evaluation, the final one included (a seeded sample, the same as an eval split\'s max_queries of that size); null = all. Re-ranking costs top_k encoder passes per query'),
        fusion: z
          .object({
            weight: z.number().min(0).max(1).describe("The first stage's share w: candidates ordered by w · z(first stage) + (1 − w) · z(cross-encoder), each score standardised over the query's candidates"),
          })
          .strict()
          .nullable()
          .default(null)
          .describe('Also report the cross-encoder fused with the first stage (<eval name>/fused/<metric>, CombSUM of per-query z-scores), from the same cross-encoder scores; null = the cross-encoder alone'),
      })
      .strict()
      .default({ first_stage: 'bm25', top_k: 50, max_queries: null, fusion: null }),
    residual: z
      .object({
        temperature: z.number().gt(0).describe("τ: the run's score enters as score/τ (0.05 for a cosine run trained at InfoNCE temperature 0.05)"),
      })
      .strict()
      .nullable()
      .default(null)
      .describe(
        "Train and re-rank the cross-encoder as a correction to the two-tower run that mines its negatives: s'(q, d) = run(q, d)/τ + CE(q, d), with the classifier starting at zero so step 0 ranks as the run does (the residual of Gao et al. 2021, CLEAR, arXiv 2004.13969). Needs negatives.source and rerank.first_stage to name the same run; null = the cross-encoder scores alone",
      ),
  })
  .strict()
  .refine((c) => c.residual === null || (c.negatives.source !== 'bm25' && c.rerank.first_stage !== 'bm25'), {
    message: 'corrects the scores of the run that mines the negatives, so negatives.source and rerank.first_stage must both name that run (run:<dir>), not bm25',
    path: ['residual'],
  });

const layerIndex = z.number().int().min(0).max(96);

const distillSchema = z
  .object({
    teacher: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('The teacher (required for task: distill): a Kiln run (runs/<id>, or runs/<name> for the newest completed run of that name), two-tower or cross-encoder, or a Hugging Face BERT directory (a bi-encoder)'),
    student_init: z
      .enum(['config', 'teacher_layers'])
      .default('config')
      .describe("config: the student starts as model: says (model.init_from, or random); teacher_layers: it copies the teacher's embeddings and every other layer (DistilBERT), so it must have the teacher's width and half its layers"),
    layer_map: z
      .union([z.literal('uniform'), z.array(z.tuple([layerIndex, layerIndex])).min(1)])
      .default('uniform')
      .describe('Student ↔ teacher layers for hidden_mse and attention_kl: uniform (embeddings 0 ↔ 0 and student layer i ↔ teacher layer i·Lt/Ls, as TinyBERT) or a list of [student, teacher] pairs (0 = the embedding output, 1…L = layer outputs; attention_kl uses pairs with both ≥ 1)'),
    candidates: z
      .object({
        source: runReference.default('bm25').describe('For a cross-encoder teacher: who mines each query\'s candidates, bm25 or run:<dir> (a two-tower run)'),
        k: z.number().int().min(1).max(64).default(3).describe('Candidates per positive that the teacher scores each step'),
        pool: positiveInt.max(1000).default(30).describe('Candidates retrieved per query; the k are drawn from them'),
      })
      .strict()
      .default({ source: 'bm25', k: 3, pool: 30 }),
    baseline: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('The same student trained without the teacher, for the same steps (runs/<id> or runs/<name>): the report\'s "before" (retention and gap bridged need it)'),
  })
  .strict();

export const configSchema = z
  .object({
    task: z.enum(TASK_NAMES).default('twotower').describe(`What to train: ${TASK_NAMES.map((t) => `${t} (${TASK_SPECS[t].description})`).join('; ')}`),
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ., _ and - only').describe('Run name; the run directory is runs/<name>-<timestamp>'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42).describe('Seeds weights, data order, dropout and sampling'),
    tags: z
      .record(z.string().regex(/^[A-Za-z0-9._/-]+$/, 'letters, digits, ., _, / and - only'), z.string())
      .default({})
      .describe('Free-form labels for the run store and dashboard, e.g. {purpose: baseline}'),
    data: dataSchema,
    model: modelSchema,
    loss: z
      .array(lossEntrySchema)
      .default([])
      .describe("Weighted sum of losses, e.g. [{name: infonce, weight: 1, temperature: 0.05}]; required for twotower, the task's own loss when left out for mlm (masked_lm) and cross-encoder (bce on logits)"),
    train: trainSchema,
    eval: evalSettingsSchema.default({ lexical: { fields: ['text', 'labels'], match: 'best' }, hybrid: null }).describe('Lexical rankers and hybrid (dense + lexical) ranking in evaluation'),
    mlm: mlmSchema.default({ probability: 0.15, whole_word: false, held_out: 512 }).describe('Masking and held-out evaluation of task: mlm (ignored by other tasks)'),
    cross_encoder: crossEncoderSchema
      .default({ negatives: { source: 'bm25', k: 3, pool: 30, random: 0, max_relative_score: null }, rerank: { first_stage: 'bm25', top_k: 50, max_queries: null, fusion: null }, residual: null })
      .describe('Negatives and re-ranking of task: cross-encoder (ignored by other tasks)'),
    distill: distillSchema
      .default({ teacher: null, student_init: 'config', layer_map: 'uniform', candidates: { source: 'bm25', k: 3, pool: 30 }, baseline: null })
      .describe('The teacher and the report of task: distill (ignored by other tasks)'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.train.warmup_steps > c.train.steps) {
      ctx.addIssue({ code: 'custom', path: ['train', 'warmup_steps'], message: `warm-up (${c.train.warmup_steps}) is longer than train.steps (${c.train.steps})` });
    }
    if (c.train.batch_size % c.train.grad_accum !== 0) {
      ctx.addIssue({ code: 'custom', path: ['train', 'grad_accum'], message: `train.batch_size ${c.train.batch_size} does not cut into ${c.train.grad_accum} equal micro-batches; use a grad_accum that divides it` });
    }
    const task = TASK_SPECS[c.task];
    const gathering = c.loss.map((entry) => ('gather_negatives' in entry ? entry.gather_negatives : null));
    if (gathering.some((g) => g === true)) {
      if (c.task !== 'twotower') {
        ctx.addIssue({ code: 'custom', path: ['loss', gathering.indexOf(true), 'gather_negatives'], message: `gathers in-batch negatives across processes, which only task twotower has; task ${c.task} trains on each process's own slice (remove it)` });
      } else {
        gathering.forEach((g, j) => {
          if (g === false) ctx.addIssue({ code: 'custom', path: ['loss', j, 'gather_negatives'], message: 'the score losses of a run share one score matrix: set gather_negatives on all of them or none' });
        });
      }
    }
    c.data.train.forEach((entry, i) => {
      const kind = (RECIPES as Record<string, { kind: string } | undefined>)[entry.recipe]?.kind;
      // Kinds no task trains on (texts) are reported by the entry's own check.
      if (kind !== undefined && kind !== 'texts' && !(task.trainRecipeKinds as readonly string[]).includes(kind)) {
        ctx.addIssue({ code: 'custom', path: ['data', 'train', i, 'recipe'], message: `recipe '${entry.recipe}' yields ${kind}; task ${c.task} trains on ${task.trainRecipeKinds.join(' or ')} (e.g. ${c.task === 'mlm' ? 'domain-corpus' : 'esco-occupations'})` });
      }
      // Scored pairs carry graded targets (a label 0 is a pair that is NOT a match): a loss that
      // takes every pair as a positive would learn the opposite of the data.
      if (kind === 'scored-pairs') {
        c.loss.forEach((loss, j) => {
          const definition = LOSSES[loss.name];
          if (definition.input === 'scores' && !definition.gradedTargets) {
            const graded = Object.values(LOSSES).filter((l) => l.gradedTargets).map((l) => l.name);
            ctx.addIssue({ code: 'custom', path: ['loss', j, 'name'], message: `loss ${loss.name} takes every training pair as a positive, but data.train[${i}] (recipe '${entry.recipe}') yields scored pairs with labels; use a loss that learns graded targets: ${graded.join(', ')}` });
          }
        });
      }
    });
    if (c.loss.length === 0 && task.defaultLoss === null) {
      ctx.addIssue({ code: 'custom', path: ['loss'], message: `required for task ${c.task}: a list of losses, e.g. [{name: infonce, temperature: 0.05}]` });
    }
    c.loss.forEach((entry, i) => {
      const input = LOSSES[entry.name].input;
      if (!(task.lossInputs as readonly string[]).includes(input)) {
        const fitting = Object.values(LOSSES).filter((l) => (task.lossInputs as readonly string[]).includes(l.input)).map((l) => l.name);
        // A teacher's outputs: say where they come from, since no setting of this task provides them.
        const teacher = (TEACHER_LOSS_INPUTS as readonly string[]).includes(input) ? " (a teacher's outputs: use task: distill with distill.teacher)" : '';
        ctx.addIssue({ code: 'custom', path: ['loss', i, 'name'], message: `loss '${entry.name}' reads ${input}, which task ${c.task} does not provide${teacher}; losses for ${c.task}: ${fitting.join(', ')}` });
      }
    });
    if (c.task === 'cross-encoder' && c.cross_encoder.negatives.source === 'bm25') {
      c.loss.forEach((entry, i) => {
        if (LOSSES[entry.name].input === 'teacher_scores') {
          ctx.addIssue({ code: 'custom', path: ['loss', i, 'name'], message: `loss '${entry.name}' reads the scores of the two-tower run that mines the negatives, but cross_encoder.negatives.source is bm25; set it to run:<dir>` });
        }
      });
    }
    if (c.task === 'distill' && c.distill.teacher === null) {
      ctx.addIssue({ code: 'custom', path: ['distill', 'teacher'], message: 'required for task distill: a Kiln run (runs/<name>) or a Hugging Face BERT directory' });
    }
    const stopping = c.train.early_stopping;
    if (stopping !== null) {
      const evalNames = [...c.data.eval.map((e) => e.name), ...(c.task === 'mlm' ? ['heldout'] : [])];
      const [evalName, metric] = stopping.metric.split('/');
      const spec = c.task === 'mlm' && evalName === 'heldout' ? { metrics: ['mlm_loss', 'mlm_accuracy'] } : c.data.eval.find((e) => e.name === evalName);
      if (spec === undefined || metric === undefined || !spec.metrics.includes(metric)) {
        ctx.addIssue({
          code: 'custom',
          path: ['train', 'early_stopping', 'metric'],
          message: `'${stopping.metric}' is not an evaluated metric; expected <eval name>/<metric> from data.eval (${evalNames.join(', ') || 'none defined'})`,
        });
      }
      if (c.train.eval_every === 0) {
        ctx.addIssue({ code: 'custom', path: ['train', 'eval_every'], message: 'early stopping needs periodic evaluation: set eval_every > 0' });
      }
    }
    const names = new Set<string>();
    c.data.eval.forEach((e, i) => {
      if (names.has(e.name)) ctx.addIssue({ code: 'custom', path: ['data', 'eval', i, 'name'], message: `duplicate eval name '${e.name}'` });
      names.add(e.name);
    });
  });

/** The config as written (input) and after defaults (output). */
export type ConfigInput = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;
/** The numeric precision a run trains in, once `auto` is resolved for the machine (src/config/load.ts). */
export type Precision = 'fp32' | 'bf16';
/** A validated config as a run sees it: defaults filled in, `train.precision: auto` resolved. */
export type KilnConfig = Omit<ParsedConfig, 'train'> & { train: Omit<ParsedConfig['train'], 'precision'> & { precision: Precision } };
export type EvalSpec = KilnConfig['data']['eval'][number];
export type HybridSettings = z.output<typeof hybridSchema>;
export type { TaskName } from './tasks.js';
