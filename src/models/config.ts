/**
 * The model configuration: encoder sizes (BERT's hyper-parameters, named as in Hugging Face's
 * `BertConfig` so a checkpoint's config.json maps across), pooling, towers, prompts and head.
 *
 * Presets are the published BERT sizes (Turc et al. 2019, "Well-Read Students Learn Better",
 * arXiv 1908.08962, for tiny/mini/small/medium; Devlin et al. 2019 for base). A preset fills
 * the sizes; explicit fields in the config override it.
 */
export interface EncoderConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  hiddenDropout: number;
  attentionDropout: number;
  layerNormEps: number;
  /** BERT initialises weights from N(0, 0.02²). */
  initStd: number;
  padId: number;
}

export type PoolingMode = 'mean' | 'cls' | 'last';
export type HeadType = 'cosine' | 'dot' | 'hadamard_mlp';

export interface HeadConfig {
  type: HeadType;
  /** Hidden width of the Hadamard MLP (ignored by cosine and dot). */
  mlpHidden: number;
}

export interface TwoTowerConfig {
  encoder: EncoderConfig;
  pooling: PoolingMode;
  /** 'shared': one encoder for both sides (JUDE's shared base); 'separate': one per side. */
  towers: 'shared' | 'separate';
  /** Prompt template per input type, e.g. { title: 'job title: {text}' }; types absent use '{text}'. */
  prompts: Record<string, string>;
  head: HeadConfig;
}

export const ENCODER_PRESETS = {
  'bert-tiny': { hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512 },
  'bert-mini': { hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024 },
  'bert-small': { hiddenSize: 512, numLayers: 4, numHeads: 8, intermediateSize: 2048 },
  'bert-medium': { hiddenSize: 512, numLayers: 8, numHeads: 8, intermediateSize: 2048 },
  'bert-base': { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072 },
} as const satisfies Record<string, Pick<EncoderConfig, 'hiddenSize' | 'numLayers' | 'numHeads' | 'intermediateSize'>>;

export type EncoderPreset = keyof typeof ENCODER_PRESETS;

/** Renders a prompt template: `{text}` is replaced by the input; a type without a template passes text through. */
export function applyPrompt(prompts: Record<string, string>, inputType: string, text: string): string {
  const template = prompts[inputType];
  return template === undefined ? text : template.replaceAll('{text}', text);
}
