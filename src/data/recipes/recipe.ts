/**
 * What a dataset recipe is: a name, the kind of data it yields, a strict zod schema for its
 * options (every option described, defaults filled in) and an async `load`. Shared helpers
 * for recipes live here too: whitespace cleanup, the normalisation texts are compared under
 * for decontamination, and the seeded labelled pairs that retrieval splits carry for ROC-AUC.
 */
import { z } from 'zod';

import { Rng } from '../rng.js';
import type { PairExample, RecipeContext, RetrievalSplit, ScoredTextPair, SpanExample, TextExample } from '../types.js';

/** What each kind of recipe yields. */
export interface RecipeOutputs {
  pairs: PairExample[];
  retrieval: RetrievalSplit;
  'scored-pairs': ScoredTextPair[];
  texts: SpanExample[];
  /** Plain texts for masked-language-model pretraining (no labels, no pairing). */
  corpus: TextExample[];
}
export type RecipeKind = keyof RecipeOutputs;

export interface Recipe<K extends RecipeKind = RecipeKind, S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly kind: K;
  /** One line: what the recipe reads and yields. */
  readonly description: string;
  /** Strict schema of the options (unknown keys are errors); `parse({})` gives the defaults. */
  readonly options: S;
  /** Validates `options` (defaults filled in) and loads the data. */
  load(ctx: RecipeContext, options?: z.input<S>): Promise<RecipeOutputs[K]>;
  /** Like `load`, for options of unknown shape (from a config file): validation errors name the recipe and the key. */
  loadUnchecked(ctx: RecipeContext, options: unknown): Promise<RecipeOutputs[K]>;
  /** Validates options and fills in defaults; throws an error naming the recipe and each bad key. */
  parseOptions(options: unknown): z.output<S>;
  /**
   * Makes the file paths among raw `options` absolute against `baseDir` (the config file's
   * directory), so a saved config names the same files from anywhere; undefined for recipes that
   * read only from the data root.
   */
  readonly resolvePaths?: (options: Record<string, unknown>, baseDir: string) => Record<string, unknown>;
}

export function defineRecipe<K extends RecipeKind, S extends z.ZodType>(spec: {
  name: string;
  kind: K;
  description: string;
  options: S;
  run: (ctx: RecipeContext, options: z.output<S>) => Promise<RecipeOutputs[K]>;
  resolvePaths?: (options: Record<string, unknown>, baseDir: string) => Record<string, unknown>;
}): Recipe<K, S> {
  const parseOptions = (options: unknown): z.output<S> => {
    const result = spec.options.safeParse(options ?? {});
    if (!result.success) throw new Error(`recipe "${spec.name}": invalid options:\n${z.prettifyError(result.error)}`);
    return result.data;
  };
  return {
    name: spec.name,
    kind: spec.kind,
    description: spec.description,
    options: spec.options,
    parseOptions,
    load: (ctx, options) => spec.run(ctx, parseOptions(options)),
    loadUnchecked: (ctx, options) => spec.run(ctx, parseOptions(options)),
    ...(spec.resolvePaths === undefined ? {} : { resolvePaths: spec.resolvePaths }),
  };
}

/** Collapses runs of whitespace (newlines in ESCO descriptions, double spaces in labels) to one space and trims. */
export function cleanText(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * How texts are compared for decontamination: Unicode NFKC, lower case, whitespace runs
 * collapsed. Kiln's tokenizer is BERT-uncased, so two texts equal under this key are the same
 * model input, and one of them being an evaluation query means both leak it.
 */
export function normalizeForOverlap(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** ESCO multi-value cells (altLabels, hiddenLabels): one value per line, cleaned, empty ones dropped. */
export function splitLines(cell: string): string[] {
  return cell
    .split('\n')
    .map(cleanText)
    .filter((s) => s !== '');
}

/**
 * Labelled pairs for ROC-AUC: for each query, its positives (label 1) and as many distinct
 * random non-positive corpus entries (label 0), drawn from a stream derived from `seed` and the
 * split name, so the set depends only on (seed, split name, queries, corpus size).
 */
export function makeLabelledPairs(
  queries: readonly { relevant: readonly number[] }[],
  corpusSize: number,
  seed: number,
  splitName: string,
): RetrievalSplit['labelledPairs'] {
  const rng = Rng.derive(seed, `labelled-pairs:${splitName}`);
  const out: RetrievalSplit['labelledPairs'] = [];
  queries.forEach((q, qi) => {
    const positives = new Set(q.relevant);
    for (const doc of q.relevant) out.push({ query: qi, doc, label: 1 });
    const wanted = Math.min(positives.size, corpusSize - positives.size);
    const drawn = new Set<number>();
    while (drawn.size < wanted) {
      const doc = rng.int(corpusSize);
      if (positives.has(doc) || drawn.has(doc)) continue;
      drawn.add(doc);
      out.push({ query: qi, doc, label: 0 });
    }
  });
  return out;
}
