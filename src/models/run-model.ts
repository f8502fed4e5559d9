/**
 * Rebuilding a trained model from its run directory, for every model kind.
 *
 * A run saves `model.json` (the kind, the model config and the maximum lengths),
 * `model.safetensors` (the delivered weights) and `tokenizer.json`. `MODEL_KINDS` maps each
 * kind to how its model is built and which BERT encoders it holds; `loadRunModel` is the one
 * loader that `kiln eval`, `kiln export`, `init_from` and the teacher of a distillation use, so
 * a new kind is a registry entry, not a `kind` switch in each of them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

import { loadSafetensors, noGrad } from '../engine/index.js';
import type { Module } from '../engine/nn/index.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import type { BertEncoder } from './bert.js';
import type { TwoTowerConfig } from './config.js';
import { CrossEncoderModel, type CrossEncoderConfig } from './cross-encoder.js';
import { MaskedLanguageModel, type MaskedLmConfig } from './masked-lm.js';
import { TwoTowerModel } from './two-tower.js';

/**
 * Where a run's weights started (`model.init_from`). Kept in model.json because what the weights
 * learnt travels with them: a two-tower run started from a Hugging Face BERT keeps BERT's trained
 * segment-1 embedding, and a cross-encoder started from that run must keep it too
 * (src/train/init-from.ts).
 */
export interface InitLineage {
  /** The source directory, as resolved when the run started. */
  path: string;
  kind: 'kiln-run' | 'hugging-face';
  /** Whether the weights had learnt text pairs (segment 1) by the time this run started from them. */
  trainedSecondSegment: boolean;
}

/** model.json of each kind: the model config, the kind, the maximum lengths it was trained with, and where its weights started. */
export interface RunModelJsons {
  'two-tower': TwoTowerConfig & { kind: 'two-tower'; maxLength: { query: number; doc: number }; initFrom?: InitLineage };
  'cross-encoder': CrossEncoderConfig & {
    kind: 'cross-encoder';
    initFrom?: InitLineage;
    maxLength: { pair: number };
    /** Trained as a correction to this two-tower run's scores (cross_encoder.residual): its logit alone is not a relevance score. */
    residual?: { run: string; temperature: number };
  };
  'masked-lm': MaskedLmConfig & { kind: 'masked-lm'; maxLength: { sequence: number }; initFrom?: InitLineage };
}
export type ModelKind = keyof RunModelJsons;
export type RunModelJson = RunModelJsons[ModelKind];

interface ModelKindDefinition<K extends ModelKind, M extends Module> {
  readonly description: string;
  create(json: RunModelJsons[K]): M;
  /** The BERT encoders inside, by parameter prefix (`encoder.` …): what `init_from` fills and a teacher reads. */
  encoders(model: M): Array<{ prefix: string; encoder: BertEncoder }>;
}

export const MODEL_KINDS: {
  'two-tower': ModelKindDefinition<'two-tower', TwoTowerModel>;
  'cross-encoder': ModelKindDefinition<'cross-encoder', CrossEncoderModel>;
  'masked-lm': ModelKindDefinition<'masked-lm', MaskedLanguageModel>;
} = {
  'two-tower': {
    description: 'a two-tower (dual) encoder',
    create: (json) => new TwoTowerModel(json),
    encoders: (model) =>
      model.config.towers === 'shared'
        ? [{ prefix: 'encoder.', encoder: model.queryEncoder }]
        : [
            { prefix: 'query_encoder.', encoder: model.queryEncoder },
            { prefix: 'doc_encoder.', encoder: model.docEncoder },
          ],
  },
  'cross-encoder': {
    description: 'a cross-encoder',
    create: (json) => new CrossEncoderModel(json),
    encoders: (model) => [{ prefix: 'encoder.', encoder: model.encoder }],
  },
  'masked-lm': {
    description: 'a BERT masked language model',
    create: (json) => new MaskedLanguageModel(json),
    encoders: (model) => [{ prefix: 'encoder.', encoder: model.encoder }],
  },
};

export type ModelOfKind = { 'two-tower': TwoTowerModel; 'cross-encoder': CrossEncoderModel; 'masked-lm': MaskedLanguageModel };

/** A rebuilt model with its model.json, tagged by kind so callers narrow on `kind`. */
export type KindedModel = { [K in ModelKind]: { kind: K; model: ModelOfKind[K]; json: RunModelJsons[K] } }[ModelKind];

export type LoadedRunModel = KindedModel & {
  runId: string;
  runPath: string;
  tokenizer: WordPieceTokenizer;
  /** The tokenizer.json object the model was trained with. */
  tokenizerJson: object;
  /** summary.json's final metrics (empty when the run has none). */
  metrics: Record<string, number>;
};

/** A directory is not a loadable run (missing files, an unknown kind): a usage error. */
export class RunModelError extends Error {}

export function isModelKind(kind: unknown): kind is ModelKind {
  return typeof kind === 'string' && Object.hasOwn(MODEL_KINDS, kind);
}

/** Builds a fresh (randomly initialised) model of model.json's kind. */
export function createModel(json: RunModelJson): KindedModel {
  const definition = MODEL_KINDS[json.kind] as ModelKindDefinition<ModelKind, Module>;
  return { kind: json.kind, model: definition.create(json as never), json } as KindedModel;
}

/** The BERT encoders of a model by parameter prefix. */
export function encodersOf(model: KindedModel): Array<{ prefix: string; encoder: BertEncoder }> {
  return (MODEL_KINDS[model.kind] as ModelKindDefinition<ModelKind, Module>).encoders(model.model);
}

/** Reads a run's model.json and checks its kind. */
export function readRunModelJson(runPath: string): RunModelJson {
  const path = join(resolve(runPath), 'model.json');
  if (!existsSync(path)) throw new RunModelError(`${resolve(runPath)}: model.json is missing; expected a run directory with a saved model (runs/<id>/ after \`kiln train\`)`);
  const json = JSON.parse(readFileSync(path, 'utf8')) as { kind?: unknown };
  if (!isModelKind(json.kind)) throw new RunModelError(`${path}: kind ${JSON.stringify(json.kind)} is unknown; expected one of ${Object.keys(MODEL_KINDS).map((k) => `"${k}"`).join(', ')}`);
  return json as RunModelJson;
}

/** Rebuilds a run's model from model.json, model.safetensors and tokenizer.json. */
export function loadRunModel(runPath: string): LoadedRunModel {
  const root = resolve(runPath);
  for (const file of ['model.json', 'model.safetensors', 'tokenizer.json']) {
    if (!existsSync(join(root, file))) throw new RunModelError(`${root}: ${file} is missing; expected a run directory with a saved model (runs/<id>/ after \`kiln train\`)`);
  }
  const built = createModel(readRunModelJson(root));
  const { tensors } = loadSafetensors(join(root, 'model.safetensors'));
  try {
    noGrad(() => built.model.loadStateDict(tensors));
  } catch (error) {
    built.model.dispose();
    throw new RunModelError(`${join(root, 'model.safetensors')}: ${(error as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  let metrics: Record<string, number> = {};
  if (existsSync(join(root, 'summary.json'))) {
    const summary = JSON.parse(readFileSync(join(root, 'summary.json'), 'utf8')) as { metrics?: Record<string, number> };
    metrics = Object.fromEntries(Object.entries(summary.metrics ?? {}).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));
  }
  const tokenizerPath = join(root, 'tokenizer.json');
  return {
    ...built,
    runId: basename(root),
    runPath: root,
    tokenizer: WordPieceTokenizer.fromTokenizerJson(tokenizerPath),
    tokenizerJson: JSON.parse(readFileSync(tokenizerPath, 'utf8')) as object,
    metrics,
  };
}
