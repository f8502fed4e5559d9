/**
 * `kiln data inspect`: what a config's data will look like to the model, before an hour of
 * training. For each `data.train` and `data.eval` entry it loads the recipe exactly as a run
 * does (the same options, `on_bad_row` and tokenizer) and reports:
 * - rows read, rows kept, rows skipped and the first reasons (file:line: why);
 * - duplicates: the same (query, document) more than once (a run keeps one of them);
 * - token lengths after the prompt template, with [CLS] and [SEP]: p50, p90, p99 and max, per
 *   side, and the share that `data.max_length` (queries) or `data.doc_max_length` (documents)
 *   truncates;
 * - five sample pairs, drawn with the config's seed, as the model sees them (prompt applied).
 * Nothing is written.
 */
import { createContext } from '../data/files.js';
import { loadRecipe, type LoadedData } from '../data/recipes/index.js';
import { Rng } from '../data/rng.js';
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import { applyPrompt } from '../models/config.js';
import type { KilnConfig } from '../config/schema.js';
import { prepareEncoder, trainingPairs } from './setup.js';

export interface LengthStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Share of texts longer than `maxLength` tokens, which the model sees truncated. */
  truncated: number;
  maxLength: number;
}

export interface SidePreview {
  /** 'query' / 'document', 'a' / 'b', or 'text' (corpus). */
  name: string;
  texts: number;
  lengths: LengthStats;
}

export interface RecipeInspection {
  /** 'train[0]' or the evaluation split's name. */
  use: string;
  recipe: string;
  kind: LoadedData['kind'];
  rowsRead: number;
  rowsKept: number;
  rowsSkipped: number;
  /** The first skipped rows' messages (file:line: reason). */
  skippedReasons: string[];
  /** Examples repeated exactly (same query and document, or same text). */
  duplicates: number;
  sides: SidePreview[];
  /** Up to five examples as the model sees them: each field after its prompt template. */
  samples: Array<Record<string, string>>;
}

/** The token count of `text` as the model is fed it: its word pieces plus [CLS] and [SEP]. */
function tokenCount(tokenizer: WordPieceTokenizer, text: string): number {
  return tokenizer.pieceIds(text).length + 2;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function lengthStats(counts: readonly number[], maxLength: number): LengthStats {
  const sorted = [...counts].sort((a, b) => a - b);
  const over = counts.filter((c) => c > maxLength).length;
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0, truncated: counts.length === 0 ? 0 : over / counts.length, maxLength };
}

/** The texts of each side, as prompted model inputs, and the examples they form. */
function sidesOf(loaded: LoadedData, config: KilnConfig, isTraining: boolean): { sides: Array<{ name: string; texts: string[]; maxLength: number }>; examples: Array<Record<string, string>>; keys: string[] } {
  const prompts = config.task === 'cross-encoder' ? {} : config.model.prompts;
  const prompt = (type: string, text: string): string => applyPrompt(prompts, type, text);
  const queryMax = config.data.max_length;
  const docMax = config.data.doc_max_length ?? config.data.max_length;
  if (loaded.kind === 'corpus' || loaded.kind === 'texts') {
    const texts = loaded.data.map((t) => t.text);
    return { sides: [{ name: 'text', texts, maxLength: queryMax }], examples: texts.map((text) => ({ text })), keys: texts };
  }
  if (loaded.kind === 'retrieval' && !isTraining) {
    const split = loaded.data;
    const queries = split.queries.map((q) => prompt(split.queryType, q.text));
    const docs = split.corpus.map((d) => prompt(split.docType, d.text));
    const examples = split.queries.map((q, i) => ({ query: queries[i]!, relevant: q.relevant.map((d) => docs[d]!).join(' | ') }));
    return { sides: [{ name: 'query', texts: queries, maxLength: queryMax }, { name: 'document', texts: docs, maxLength: docMax }], examples, keys: split.queries.map((q) => q.text) };
  }
  if (loaded.kind === 'scored-pairs' && !isTraining) {
    const a = loaded.data.map((p) => prompt(p.aType ?? 'sentence', p.a));
    const b = loaded.data.map((p) => prompt(p.bType ?? 'sentence', p.b));
    const examples = loaded.data.map((p, i) => ({ a: a[i]!, b: b[i]!, score: String(p.score) }));
    const bMax = loaded.data[0]?.bSide === 'doc' ? docMax : queryMax;
    return { sides: [{ name: 'a', texts: a, maxLength: queryMax }, { name: 'b', texts: b, maxLength: bMax }], examples, keys: loaded.data.map((p) => `${p.a}\u0000${p.b}`) };
  }
  const pairs = trainingPairs(loaded);
  const queries = pairs.map((p) => prompt(p.queryType, p.query));
  const docs = pairs.map((p) => prompt(p.docType, p.doc));
  const negatives = pairs.flatMap((p) => (p.negatives ?? []).map((n) => prompt(p.docType, n)));
  const examples = pairs.map((p, i) => ({
    query: queries[i]!,
    document: docs[i]!,
    ...(p.negatives === undefined ? {} : { negatives: p.negatives.map((n) => prompt(p.docType, n)).join(' | ') }),
    ...(p.label === undefined ? {} : { label: String(p.label) }),
  }));
  const sides = [
    { name: 'query', texts: queries, maxLength: queryMax },
    { name: 'document', texts: docs, maxLength: config.task === 'cross-encoder' ? queryMax : docMax },
  ];
  if (negatives.length > 0) sides.push({ name: 'negative', texts: negatives, maxLength: docMax });
  return { sides, examples, keys: pairs.map((p) => `${p.queryType}\u0000${p.query}\u0000${p.docType}\u0000${p.doc}`) };
}

/** Inspects every training and evaluation entry of `config` (see the header). */
export async function inspectData(config: KilnConfig, options: { dataRoot?: string; samples?: number } = {}): Promise<RecipeInspection[]> {
  const { dataRoot, tokenizer } = prepareEncoder(config, options.dataRoot);
  const uses = [
    ...config.data.train.map((use, i) => ({ use: `train[${i}]`, recipe: use.recipe, options: use.options, isTraining: true })),
    ...config.data.eval.map((use) => ({ use: `eval ${use.name}`, recipe: use.recipe, options: use.options, isTraining: false })),
  ];
  const out: RecipeInspection[] = [];
  for (const [index, use] of uses.entries()) {
    // One context per entry, so each one's skipped rows are its own.
    const ctx = createContext({ dataRoot, onBadRow: config.data.on_bad_row, seed: config.seed });
    const loaded = await loadRecipe(use.recipe, ctx, use.options);
    const { sides, examples, keys } = sidesOf(loaded, config, use.isTraining);
    const seen = new Set<string>();
    let duplicates = 0;
    for (const key of keys) {
      if (seen.has(key)) duplicates++;
      else seen.add(key);
    }
    const rng = Rng.derive(config.seed, `inspect:${index}`);
    const wanted = Math.min(options.samples ?? 5, examples.length);
    const picked = new Set<number>();
    while (picked.size < wanted) picked.add(rng.int(examples.length));
    out.push({
      use: use.use,
      recipe: use.recipe,
      kind: loaded.kind,
      rowsRead: keys.length + ctx.report.total,
      rowsKept: keys.length,
      rowsSkipped: ctx.report.total,
      skippedReasons: ctx.report.messages(),
      duplicates,
      sides: sides.map((side) => ({ name: side.name, texts: side.texts.length, lengths: lengthStats(side.texts.map((t) => tokenCount(tokenizer, t)), side.maxLength) })),
      samples: [...picked].sort((a, b) => a - b).map((i) => examples[i]!),
    });
  }
  return out;
}

/** The report as text: one block per entry. */
export function formatInspection(report: readonly RecipeInspection[]): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const blocks = report.map((r) => {
    const lines = [`${r.use}: recipe ${r.recipe} (${r.kind})`];
    lines.push(`  rows: ${r.rowsRead} read, ${r.rowsKept} kept, ${r.rowsSkipped} skipped; ${r.duplicates} duplicate${r.duplicates === 1 ? '' : 's'}`);
    for (const reason of r.skippedReasons) lines.push(`    skipped ${reason}`);
    for (const side of r.sides) {
      const l = side.lengths;
      lines.push(`  ${side.name} tokens (${side.texts} texts): p50 ${l.p50}, p90 ${l.p90}, p99 ${l.p99}, max ${l.max}; ${pct(l.truncated)} truncated at ${l.maxLength}`);
    }
    lines.push(`  samples (as the model sees them):`);
    for (const sample of r.samples) lines.push(`    ${Object.entries(sample).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('  ')}`);
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}
