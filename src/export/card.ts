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
 *
 * The same facts, rendered as a Hugging Face README.md model card, describe a
 * `--format sentence-transformers` export (`sentenceTransformersReadme`, at the end).
 */
import { z } from 'zod';

import { GRAPH_OPERATORS } from './bert-graph.js';

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
  /** The operator set of the graphs (bert-graph.ts): cards written before it existed used standard operators only. */
  operators: z.enum(GRAPH_OPERATORS).default('onnx'),
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

// ---------------------------------------------------------------------------------------
// README.md: the Hugging Face model card of a sentence-transformers export
// ---------------------------------------------------------------------------------------

/** The facts a README states about an export: a two-tower card's, without the ONNX format's file layout, and the parity check of the ONNX graph. */
export type ReadmeCard = Pick<TwoTowerCard, 'modelId' | 'kilnVersion' | 'exportedAt' | 'opset' | 'parameters' | 'source' | 'metrics' | 'distillation' | 'encoder' | 'pooling' | 'head' | 'normalized' | 'dimension' | 'prompts' | 'maxLength'> & {
  parity?: { inputs: string; outputs: number; maxAbsDiff: number; criterion: string; passed: boolean };
};

/** How the sentence-transformers directory realises the card (sentence-transformers.ts). */
export interface SentenceTransformersLayout {
  maxSeqLength: number;
  /** { input type: prefix } */
  prompts: Record<string, string>;
  normalized: boolean;
  lowercase: boolean;
}

/** A single-quoted JavaScript string literal. */
function jsString(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** transformers.js' name for each of Kiln's poolings (the feature-extraction pipeline's `pooling` option). */
const TRANSFORMERS_JS_POOLING = { mean: 'mean', cls: 'cls', last: 'last_token' } as const;

/**
 * README.md of a sentence-transformers export: Hugging Face model-card front matter
 * (https://huggingface.co/docs/hub/model-cards), what the model is, how to embed with
 * sentence-transformers and transformers.js (prompts included), and where it came from.
 */
export function sentenceTransformersReadme(card: ReadmeCard, layout: SentenceTransformersLayout): string {
  const e = card.encoder;
  const name = card.source.run;
  const promptNames = Object.keys(layout.prompts);
  const examplePrompt = promptNames[0];
  const similarity = layout.normalized ? 'cosine' : 'dot product';
  const lines: string[] = [
    '---',
    'library_name: sentence-transformers',
    'pipeline_tag: sentence-similarity',
    'tags:',
    '- sentence-transformers',
    '- feature-extraction',
    '- sentence-similarity',
    '- transformers.js',
    '- kiln',
    '---',
    '',
    `# ${name}`,
    '',
    `A BERT text encoder trained with Kiln (run \`${card.source.run}\`) and exported by kiln ${card.kilnVersion} on ${card.exportedAt.slice(0, 10)} as a sentence-transformers model. Model id \`${card.modelId}\`.`,
    '',
    '| | |',
    '| --- | --- |',
    `| Architecture | BertModel: ${e.numLayers} layers, hidden size ${e.hiddenSize}, ${e.numHeads} heads, feed-forward ${e.intermediateSize}, ${e.vocabSize} WordPiece tokens (${layout.lowercase ? 'uncased' : 'cased'}) |`,
    `| Parameters | ${card.parameters.toLocaleString('en-US')} |`,
    `| Embedding | ${card.dimension} dimensions, ${card.pooling === 'last' ? 'last-token' : card.pooling} pooling${layout.normalized ? ', L2-normalised' : ''} |`,
    `| Similarity | ${similarity} (Kiln's ${card.head} head) |`,
    `| Max sequence length | ${layout.maxSeqLength} tokens${card.maxLength.query !== layout.maxSeqLength ? ` (Kiln trained queries at ${card.maxLength.query} and documents at ${card.maxLength.doc}; this export truncates every text at the documents' length)` : ''} |`,
    '',
  ];
  if (promptNames.length > 0) {
    lines.push('## Prompts', '', 'The model was trained with a prefix per input type. Pass the input type as `prompt_name` (sentence-transformers) or prepend the prefix yourself; without one, texts are embedded as they are.', '', '| prompt_name | prefix |', '| --- | --- |');
    for (const [type, prefix] of Object.entries(layout.prompts)) lines.push(`| \`${type}\` | \`${JSON.stringify(prefix)}\` |`);
    lines.push('');
  }
  const promptArg = examplePrompt === undefined ? '' : `, prompt_name=${JSON.stringify(examplePrompt)}`;
  const promptJs = examplePrompt === undefined ? '' : `${jsString(layout.prompts[examplePrompt]!)} + `;
  lines.push(
    '## Usage (sentence-transformers)',
    '',
    '```python',
    'from sentence_transformers import SentenceTransformer',
    '',
    `model = SentenceTransformer("path/to/${name}")`,
    `embeddings = model.encode(["data engineer", "registered nurse"]${promptArg})`,
    'similarities = model.similarity(embeddings, embeddings)',
    '```',
    '',
    '## Usage (transformers.js)',
    '',
    '```js',
    "import { env, pipeline } from '@huggingface/transformers';",
    '',
    "env.localModelPath = 'path/to/';",
    'env.allowRemoteModels = false;',
    `const extractor = await pipeline('feature-extraction', '${name}', { dtype: 'fp32' });`,
    `const output = await extractor([${promptJs}'data engineer'], { pooling: '${TRANSFORMERS_JS_POOLING[card.pooling]}', normalize: ${layout.normalized} });`,
    'output.tolist(); // one vector per text',
    '```',
    '',
    `transformers.js (4.3) truncates a text longer than ${layout.maxSeqLength} tokens by cutting off its final \`[SEP]\`, so such a text embeds slightly differently there than in sentence-transformers; shorter texts embed the same.`,
    ...(card.pooling === 'last' ? ['', "Its `last_token` pooling reads the last position of the padded batch, not the last real token: pass one text per call."] : []),
    '',
    '## Files',
    '',
    '- `config.json`, `model.safetensors`: the encoder as a Hugging Face `BertModel`. Kiln has no pooler, so `pooler.dense` is all zeros and `pooler_output` is 0; use the pooled sentence embedding instead.',
    '- `tokenizer.json`, `tokenizer_config.json`, `vocab.txt`, `special_tokens_map.json`: the WordPiece tokenizer the model was trained with.',
    `- \`modules.json\`, \`sentence_bert_config.json\`, \`1_Pooling/\`${layout.normalized ? ', `2_Normalize`' : ''}, \`config_sentence_transformers.json\`: the sentence-transformers pipeline and prompts.`,
    `- \`onnx/model.onnx\`: \`input_ids\`, \`attention_mask\`, \`token_type_ids\` → \`last_hidden_state\` [batch, sequence, ${card.dimension}] (opset ${card.opset}), for transformers.js and onnxruntime.`,
    '',
  );
  const metrics = Object.entries(card.metrics);
  if (metrics.length > 0) {
    lines.push('## Evaluation (source run)', '', '| metric | value |', '| --- | --- |', ...metrics.map(([metric, value]) => `| ${metric} | ${value.toFixed(4)} |`), '');
  }
  const d = card.distillation;
  if (d !== undefined) {
    lines.push('## Distillation', '', `Distilled from \`${d.teacher}\` (a ${d.teacherKind}, ${d.teacherParameters.toLocaleString('en-US')} parameters): ${(100 * d.reduction).toFixed(1)}% fewer parameters.`, '');
    for (const [metric, retention] of Object.entries(d.retention)) lines.push(`- ${metric}: ${(100 * retention).toFixed(1)}% of the teacher`);
    lines.push('');
  }
  if (card.parity !== undefined) {
    const p = card.parity;
    lines.push('## Checks', '', `\`onnx/model.onnx\` against Kiln's eager model on ${p.outputs} ${p.inputs}: max |Δ| ${p.maxAbsDiff.toExponential(2)} (${p.criterion}: ${p.passed ? 'passed' : 'failed'}).`, '');
  }
  return `${lines.join('\n')}`;
}
