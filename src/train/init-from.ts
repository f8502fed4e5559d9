/**
 * `model.init_from`: a new run's encoder starts from earlier weights, either a Kiln run
 * (runs/<id>, e.g. an MLM pretraining run, or a two-tower teacher) or a Hugging Face BERT
 * directory on disk (src/models/hf-checkpoint.ts).
 *
 * The source fixes the encoder's sizes and vocabulary (and so the tokenizer); the config keeps
 * its dropout. Tensors are matched by name after each side's encoder prefix is removed:
 * a target `encoder.embeddings.word_embeddings.weight` (or `query_encoder.…`) reads the
 * source's `embeddings.word_embeddings.weight`, and any other target tensor (an MLM head's
 * `cls.predictions.bias`) reads the same name in the source. The report lists what loaded,
 * what is new (left at its fresh initialisation: a head the source does not have) and what in
 * the source was skipped (a pooler, an MLM head the target does not have). A shape mismatch
 * is an error naming the tensor and both shapes: it would otherwise train from a silently
 * wrong start.
 *
 * A cross-encoder reads `[CLS] query [SEP] doc [SEP]` with segment id 1 on the document half. A
 * Kiln MLM or two-tower run only ever fed single texts (segment 0), so its segment-1 embedding
 * is still its random initialisation: measured on runs/teacher-20261203-155037, a vector of norm
 * 0.46 orthogonal to segment 0's (norm 0.28), against a mean word-embedding norm of 0.88, and
 * 1,200 cross-encoder steps moved it by under 5%. Every document token would start shifted by
 * that noise. So a pair model started from such a run copies segment 0's embedding into segment
 * 1 (`pairInput`): the document half starts as the source saw text, and training separates the
 * two. BERT's own pretraining (next-sentence prediction) trained both, so a Hugging Face source
 * keeps its segment 1, and so does a Kiln run whose own start had learnt pairs: every run records
 * its start in model.json (`initFrom`, `lineageOf`), so a two-tower run fine-tuned from a Hugging
 * Face BERT passes BERT's trained segment 1 on to a cross-encoder started from it.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { noGrad, type Tensor } from '../engine/index.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { ConfigError } from '../config/errors.js';
import { RunDirectory } from '../track/run-dir.js';
import {
  encodersOf,
  loadRunModel,
  readRunModelJson,
  RunModelError,
  type EncoderConfig,
  type InitLineage,
  type KindedModel,
  type PoolingMode,
} from '../models/index.js';
import { disposeCheckpoint, HuggingFaceImportError, isHuggingFaceDirectory, loadHuggingFaceCheckpoint } from '../models/hf-checkpoint.js';

/** Where initial weights come from, resolved before the run directory exists. */
export interface InitSource {
  path: string;
  kind: 'kiln-run' | 'hugging-face';
  /** The source's encoder sizes and vocabulary. */
  encoder: EncoderConfig;
  tokenizer: WordPieceTokenizer;
  /** A sentence-transformers model's pooling, when it says. */
  pooling: PoolingMode | null;
  /** Whether the source's weights learnt segment 1 (text pairs): a Kiln cross-encoder or a Hugging Face BERT did, a Kiln MLM or two-tower run did not unless its own start had. */
  trainedSecondSegment: boolean;
  /** Reads the weights: encoder tensors under BertEncoder's names, other tensors under their own. The caller disposes them. */
  readWeights(): Map<string, Tensor>;
}

export interface InitReport {
  source: string;
  kind: InitSource['kind'];
  loaded: string[];
  /** Target tensors the source does not have: they keep their fresh initialisation. */
  fresh: string[];
  /** Source tensors the target has no place for. */
  skipped: string[];
  /** Token-type tables whose segment-1 row was set to segment 0's (a pair model from a single-text source). */
  secondSegmentFromFirst: string[];
}

export interface ApplyInitOptions {
  /** The target reads text pairs with segment ids 0/1 (a cross-encoder). */
  pairInput?: boolean;
}

function configError(message: string): ConfigError {
  return new ConfigError([`model.init_from: ${message}`]);
}

/** Resolves `model.init_from` (a run directory or a Hugging Face directory); a problem is a config error (exit 2). */
export function resolveInitSource(path: string): InitSource {
  const dir = RunDirectory.resolveReference(path) ?? resolve(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw configError(`${dir} is not a directory; expected a run directory (runs/<id>, or runs/<name> for the newest completed run of that name) or a Hugging Face BERT directory`);
  }
  if (existsSync(join(dir, 'model.json')) && existsSync(join(dir, 'tokenizer.json'))) {
    let json;
    try {
      json = readRunModelJson(dir);
    } catch (error) {
      if (error instanceof RunModelError) throw configError(error.message);
      throw error;
    }
    if (!existsSync(join(dir, 'model.safetensors'))) throw configError(`${dir}: model.safetensors is missing (the run has not saved a model yet)`);
    return {
      path: dir,
      kind: 'kiln-run',
      encoder: json.encoder,
      tokenizer: WordPieceTokenizer.fromTokenizerJson(join(dir, 'tokenizer.json')),
      pooling: json.kind === 'masked-lm' ? null : json.pooling,
      trainedSecondSegment: json.kind === 'cross-encoder' || json.initFrom?.trainedSecondSegment === true,
      readWeights: () => {
        const source = loadRunModel(dir);
        try {
          return sourceWeights(source);
        } finally {
          source.model.dispose();
        }
      },
    };
  }
  if (isHuggingFaceDirectory(dir)) {
    let checkpoint;
    try {
      checkpoint = loadHuggingFaceCheckpoint(dir);
    } catch (error) {
      if (error instanceof HuggingFaceImportError) throw configError(error.message);
      throw error;
    }
    const { encoder, tokenizer, pooling } = checkpoint;
    disposeCheckpoint(checkpoint); // read again when the run starts: no tensors held while data loads
    return {
      path: dir,
      kind: 'hugging-face',
      encoder,
      tokenizer,
      pooling,
      trainedSecondSegment: true,
      readWeights: () => {
        const again = loadHuggingFaceCheckpoint(dir);
        return again.weights;
      },
    };
  }
  throw configError(`${dir} is neither a Kiln run (model.json, model.safetensors, tokenizer.json) nor a Hugging Face directory (config.json with model.safetensors)`);
}

/** What a run records in model.json about its start (`initFrom`): the source, and whether its weights had learnt text pairs. */
export function lineageOf(source: InitSource | null): { initFrom?: InitLineage } {
  return source === null ? {} : { initFrom: { path: source.path, kind: source.kind, trainedSecondSegment: source.trainedSecondSegment } };
}

/** A Kiln model's tensors as a source: its (first) encoder's under BertEncoder names, the rest under their own. Copies, owned by the caller. */
function sourceWeights(source: KindedModel): Map<string, Tensor> {
  const prefixes = encodersOf(source).map((e) => e.prefix);
  const first = prefixes[0];
  const out = new Map<string, Tensor>();
  noGrad(() => {
    for (const [name, t] of source.model.stateDict()) {
      if (first !== undefined && name.startsWith(first)) out.set(name.slice(first.length), t.detach().clone());
      else if (!prefixes.some((prefix) => name.startsWith(prefix))) out.set(name, t.detach().clone());
    }
  });
  return out;
}

/** The config's encoder settings with the source's sizes and vocabulary (dropout and init stay the config's). */
export function encoderFromSource(source: InitSource, configured: EncoderConfig): EncoderConfig {
  return { ...source.encoder, hiddenDropout: configured.hiddenDropout, attentionDropout: configured.attentionDropout, initStd: configured.initStd };
}

/** Copies the source's weights into `target` by name; throws on a shape mismatch. */
export function applyInitSource(target: KindedModel, source: InitSource, options: ApplyInitOptions = {}): InitReport {
  const weights = source.readWeights();
  let report: InitReport;
  try {
    report = applyWeights(target, weights, source);
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  if (options.pairInput === true && !source.trainedSecondSegment) report.secondSegmentFromFirst = copyFirstSegmentToSecond(target);
  return report;
}

/** Sets row 1 of each encoder's token-type table to row 0; returns the tables changed. */
function copyFirstSegmentToSecond(target: KindedModel): string[] {
  const state = target.model.stateDict();
  const changed: string[] = [];
  for (const { prefix } of encodersOf(target)) {
    const name = `${prefix}embeddings.token_type_embeddings.weight`;
    const table = state.get(name);
    if (table === undefined || (table.shape[0] ?? 0) < 2) continue;
    noGrad(() => {
      const second = table.select(0, 1);
      const first = table.select(0, 0);
      second.copy_(first);
      second.dispose();
      first.dispose();
    });
    changed.push(name);
  }
  return changed;
}

export function applyWeights(target: KindedModel, weights: ReadonlyMap<string, Tensor>, source: Pick<InitSource, 'path' | 'kind'>): InitReport {
  const prefixes = encodersOf(target).map((e) => e.prefix);
  const sourceName = (name: string): string => {
    const prefix = prefixes.find((p) => name.startsWith(p));
    return prefix === undefined ? name : name.slice(prefix.length);
  };
  const report: InitReport = { source: source.path, kind: source.kind, loaded: [], fresh: [], skipped: [], secondSegmentFromFirst: [] };
  const used = new Set<string>();
  const state = target.model.stateDict();
  for (const [name, tensor] of state) {
    const from = weights.get(sourceName(name));
    if (from === undefined) {
      report.fresh.push(name);
      continue;
    }
    if (from.shape.join('x') !== tensor.shape.join('x')) {
      throw new Error(`model.init_from ${source.path}: tensor '${sourceName(name)}' has shape [${from.shape.join(', ')}], but '${name}' of this model is [${tensor.shape.join(', ')}]`);
    }
    noGrad(() => tensor.copy_(from));
    used.add(sourceName(name));
    report.loaded.push(name);
  }
  // A tied tensor (the MLM decoder is the word embedding) is loaded through its first name.
  report.skipped = [...weights.keys()].filter((k) => !used.has(k) && !k.startsWith('cls.predictions.decoder.'));
  return report;
}

/** One line for the run's start: counts, and the names when there are few. */
export function formatInitReport(report: InitReport): string {
  const list = (names: string[]): string => (names.length === 0 ? 'none' : names.length <= 6 ? names.join(', ') : `${names.slice(0, 6).join(', ')} … (${names.length})`);
  const seeded =
    report.secondSegmentFromFirst.length === 0
      ? ''
      : `; segment 1 of ${list(report.secondSegmentFromFirst)} starts as segment 0 (the source only read single texts, so its segment 1 was never trained)`;
  return `init_from ${report.source} (${report.kind}): loaded ${report.loaded.length} tensors; new: ${list(report.fresh)}; skipped: ${list(report.skipped)}${seeded}`;
}
