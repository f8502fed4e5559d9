/**
 * From a validated config to the parts of a run: data root, tokenizer and encoder (the
 * config's, or an `init_from` source's), training pairs, evaluation splits and the model
 * config. Shared by the tasks and `kiln eval`, and free of side effects on disk (a config or
 * data error leaves nothing behind).
 */
import { isAbsolute, resolve } from 'node:path';

import { resolveDataRoot, createContext, requireFiles } from '../data/files.js';
import { loadRecipe, RECIPES, type LoadedData } from '../data/recipes/index.js';
import { normalizeForOverlap } from '../data/recipes/recipe.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { sampleQueries } from '../eval/evaluate.js';
import { ENCODER_PRESETS, type EncoderConfig, type TwoTowerConfig } from '../models/config.js';
import { encoderFromSource, resolveInitSource, type InitSource } from './init-from.js';
import type { EvalSpec, KilnConfig } from '../config/schema.js';
import { DEFAULT_HYBRID, type EvalSplit, type HybridOptions } from '../eval/splits.js';
import { DataError, type BadRowReport, type PairExample } from '../data/types.js';

export type { EvalSplit } from '../eval/splits.js';

/** A split's hybrid settings: its own `hybrid` block laid over `eval.hybrid`; null when neither is set. */
export function resolveHybrid(config: KilnConfig, spec: EvalSpec): HybridOptions | null {
  if (config.eval.hybrid === null && spec.hybrid === undefined) return null;
  const own = Object.fromEntries(Object.entries(spec.hybrid ?? {}).filter(([, v]) => v !== undefined));
  return { ...(config.eval.hybrid ?? DEFAULT_HYBRID), ...own };
}

export interface RunData {
  pairs: PairExample[];
  evalSplits: EvalSplit[];
  badRows: BadRowReport;
  /** Pairs per training recipe, after de-duplication. */
  pairCounts: Record<string, number>;
  /** Training pairs dropped because their query is also an evaluation query (recipes with exclude_eval_queries). */
  decontaminated: number;
  /** The pairs of each `data.train` entry, in order: pairs[start, end). */
  pairRanges: Array<{ recipe: string; start: number; end: number; weight: number }>;
  /** Absolute paths of every data file read (training and evaluation), for the summary's hashes. */
  filesRead: string[];
}

/**
 * The data root a config needs: Kiln's public datasets and a relative `data.vocab` live under it,
 * but a run on the user's own files (the generic recipes, which take paths) with an absolute
 * vocabulary needs none, so a missing `KILN_DATA` is only an error when something reads from it.
 */
export function resolveConfigDataRoot(config: KilnConfig, flag: string | undefined): string {
  const usesRoot =
    !isAbsolute(config.data.vocab) ||
    [...config.data.train, ...config.data.eval].some((use) => (RECIPES as Record<string, { resolvePaths?: unknown } | undefined>)[use.recipe]?.resolvePaths === undefined);
  if (usesRoot || (flag ?? '') !== '' || (process.env.KILN_DATA ?? '') !== '') return resolveDataRoot(flag);
  return process.cwd();
}

export function vocabPath(dataRoot: string, vocab: string): string {
  return isAbsolute(vocab) ? vocab : resolve(dataRoot, vocab);
}

export function loadTokenizer(config: KilnConfig, dataRoot: string): WordPieceTokenizer {
  if (!isAbsolute(config.data.vocab)) requireFiles(dataRoot, 'bert-vocab', [config.data.vocab]);
  return WordPieceTokenizer.fromVocabFile(vocabPath(dataRoot, config.data.vocab));
}

export async function loadEvalSplits(config: KilnConfig, dataRoot: string, report: BadRowReport, filesRead?: Set<string>): Promise<EvalSplit[]> {
  const fresh = createContext({ dataRoot, onBadRow: config.data.on_bad_row, seed: config.seed });
  const ctx = { ...fresh, report, filesRead: filesRead ?? fresh.filesRead };
  const splits: EvalSplit[] = [];
  for (const spec of config.data.eval) {
    const loaded = await loadRecipe(spec.recipe, ctx, spec.options);
    if (loaded.kind === 'retrieval') {
      splits.push({
        spec,
        kind: 'retrieval',
        split: loaded.data,
        sampled: sampleQueries(loaded.data, spec.max_queries, config.seed),
        lexical: config.eval.lexical,
        hybrid: resolveHybrid(config, spec),
      });
    } else if (loaded.kind === 'scored-pairs') {
      splits.push({ spec, kind: 'scored-pairs', pairs: loaded.data, lexical: config.eval.lexical });
    } else {
      throw new Error(`data.eval '${spec.name}': recipe '${spec.recipe}' yields ${loaded.kind}, not an evaluation split`);
    }
  }
  return splits;
}

/** Every query and pair text of the evaluation splits, normalised: training must not contain them. */
function evaluationTexts(splits: readonly EvalSplit[]): Set<string> {
  const texts = new Set<string>();
  for (const entry of splits) {
    if (entry.kind === 'retrieval') for (const q of entry.split.queries) texts.add(normalizeForOverlap(q.text));
    else for (const p of entry.pairs) texts.add(normalizeForOverlap(p.a)).add(normalizeForOverlap(p.b));
  }
  return texts;
}

/** The encoder a run trains and its tokenizer: from `model.init_from` when set (its sizes and vocabulary), else from the config. */
export interface RunEncoder {
  dataRoot: string;
  tokenizer: WordPieceTokenizer;
  encoder: EncoderConfig;
  init: InitSource | null;
  /** The vocabulary file read, when the tokenizer came from one (not from a resumed run or init_from). */
  files: string[];
}

export function prepareEncoder(config: KilnConfig, dataRootFlag: string | undefined, saved?: { modelJson: { encoder: EncoderConfig }; tokenizer: WordPieceTokenizer }): RunEncoder {
  const dataRoot = resolveConfigDataRoot(config, dataRootFlag);
  // A resumed run keeps the encoder it was created with; its weights come from the checkpoint.
  if (saved !== undefined) return { dataRoot, tokenizer: saved.tokenizer, encoder: saved.modelJson.encoder, init: null, files: [] };
  const maxLength = Math.max(config.data.max_length, config.data.doc_max_length ?? config.data.max_length);
  if (config.model.init_from !== null) {
    const init = resolveInitSource(config.model.init_from);
    const encoder = encoderFromSource(init, encoderConfigFrom(config, init.tokenizer, { ignoreSizes: true }));
    if (maxLength > encoder.maxPositions) throw new Error(`data.max_length ${maxLength} exceeds the ${encoder.maxPositions} positions of model.init_from ${init.path}`);
    return { dataRoot, tokenizer: init.tokenizer, encoder, init, files: [] };
  }
  const tokenizer = loadTokenizer(config, dataRoot);
  return { dataRoot, tokenizer, encoder: encoderConfigFrom(config, tokenizer), init: null, files: [vocabPath(dataRoot, config.data.vocab)] };
}

export async function loadRunData(config: KilnConfig, dataRoot: string): Promise<RunData> {
  const ctx = createContext({ dataRoot, onBadRow: config.data.on_bad_row, seed: config.seed });
  const evalSplits = await loadEvalSplits(config, dataRoot, ctx.report, ctx.filesRead);
  const heldOut = evaluationTexts(evalSplits);
  const pairs: PairExample[] = [];
  const pairCounts: Record<string, number> = {};
  const pairRanges: RunData['pairRanges'] = [];
  let decontaminated = 0;
  const seen = new Set<string>();
  for (const use of config.data.train) {
    const start = pairs.length;
    const loaded = await loadRecipe(use.recipe, ctx, use.options);
    let kept = 0;
    for (const pair of trainingPairs(loaded)) {
      // A training query that is also an evaluation query would leak the answer into training.
      // Taxonomy labels are the label space itself (an ESCO alternative label that is also a
      // vacancy title is what the taxonomy is for), so only recipes that ask are filtered.
      if (use.exclude_eval_queries && heldOut.has(normalizeForOverlap(pair.query))) {
        decontaminated++;
        continue;
      }
      // The same (query, doc) twice would be its own false negative within a batch.
      const key = `${pair.queryType}\u0000${pair.query}\u0000${pair.docType}\u0000${pair.doc}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push(pair);
      kept++;
    }
    pairCounts[use.recipe] = (pairCounts[use.recipe] ?? 0) + kept;
    pairRanges.push({ recipe: use.recipe, start, end: pairs.length, weight: use.weight });
  }
  return { pairs, evalSplits, badRows: ctx.report, pairCounts, pairRanges, decontaminated, filesRead: [...(ctx.filesRead ?? [])] };
}

/**
 * A training recipe's data as (query, document) pairs: pairs as they are; a retrieval split as
 * one pair per (query, relevant document) judgement, grouped by document; scored pairs as pairs
 * whose `label` is the score (the target of the positive column for graded losses).
 */
export function trainingPairs(loaded: LoadedData): PairExample[] {
  if (loaded.kind === 'pairs') return loaded.data;
  if (loaded.kind === 'retrieval') {
    const split = loaded.data;
    return split.queries.flatMap((q) =>
      q.relevant.map((d) => ({ query: q.text, doc: split.corpus[d]!.text, group: `${split.name}:${split.corpus[d]!.id}`, queryType: split.queryType, docType: split.docType, source: q.source })),
    );
  }
  if (loaded.kind === 'scored-pairs') {
    // A graded target is a probability: scores on another scale (STS-B's 0..5) must be rescaled by the recipe.
    const outside = loaded.data.find((p) => !(p.score >= 0 && p.score <= 1));
    if (outside !== undefined) throw new DataError(outside.source, undefined, `recipe '${loaded.recipe}' gives a score of ${outside.score}; training on scored pairs needs scores in [0, 1] (rescale them with the recipe's options, e.g. scale: unit or score_range)`);
    return loaded.data.map((p) => ({ query: p.a, doc: p.b, group: `doc:${normalizeForOverlap(p.b)}`, queryType: p.aType ?? 'sentence', docType: p.bType ?? 'sentence', source: p.source, label: p.score }));
  }
  throw new Error(`data.train: recipe '${loaded.recipe}' yields ${loaded.kind}, not training pairs`);
}

/** The config's encoder; `ignoreSizes` when an init_from source supplies them (only dropout and init are read). */
export function encoderConfigFrom(config: KilnConfig, tokenizer: WordPieceTokenizer, options: { ignoreSizes?: boolean } = {}): EncoderConfig {
  const m = config.model;
  const preset = m.preset === undefined ? undefined : ENCODER_PRESETS[m.preset];
  const maxLength = Math.max(config.data.max_length, config.data.doc_max_length ?? config.data.max_length);
  if (options.ignoreSizes !== true && maxLength > m.max_positions) throw new Error(`data.max_length ${maxLength} exceeds model.max_positions ${m.max_positions}`);
  return {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: m.hidden_size ?? preset?.hiddenSize ?? 0,
    numLayers: m.num_layers ?? preset?.numLayers ?? 0,
    numHeads: m.num_heads ?? preset?.numHeads ?? 0,
    intermediateSize: m.intermediate_size ?? preset?.intermediateSize ?? 0,
    maxPositions: m.max_positions,
    typeVocabSize: m.type_vocab_size,
    hiddenDropout: m.hidden_dropout,
    attentionDropout: m.attention_dropout,
    layerNormEps: m.layer_norm_eps,
    initStd: m.init_std,
    padId: tokenizer.padId,
  };
}

export function twoTowerConfigFrom(config: KilnConfig, encoder: EncoderConfig, pooling = config.model.pooling): TwoTowerConfig {
  const m = config.model;
  return { encoder, pooling, towers: m.towers, prompts: m.prompts, head: { type: m.head.type, mlpHidden: m.head.mlp_hidden } };
}
