/**
 * `kiln skills eval`: the skill taggers on the TECH and HOUSE skill-extraction sets (Decorte et
 * al. 2023 protocol, src/data/recipes/skill-extraction.ts: rows grouped by sentence, labels
 * that are not ESCO preferred labels dropped, all 13,896 skills ranked per sentence).
 *
 * Rankings, one per variant, scored with the evaluators' metrics (RP@k, MRR; docs/metrics.md):
 *   trie        the taxonomy trie's matches (longest first), the rest of the taxonomy after them
 *   bm25        BM25 over the skills' labels
 *   tfidf_char  character TF-IDF over the skills' labels
 *   semantic    the two-tower model alone (cosine against every skill)
 *   combined    the four fused as the pipeline fuses them (./tagger.ts), the rest after
 * A list ranks only what its ranker retrieved; the skills it did not retrieve follow in taxonomy
 * order, as in `kiln eval --hybrid`.
 *
 * Extraction, beside the rankings: the skills each variant would emit for the sentence (the trie
 * its matches; semantic the model's top k at cosine ≥ threshold; combined what the pipeline
 * emits), against the sentence's labels: micro-averaged precision, recall and F1.
 */
import type { RetrievalSplit } from '../data/types.js';
import { evaluateRetrieval, type RetrievalScorer } from '../eval/evaluate.js';
import type { Candidates } from '../eval/lexical.js';
import type { SkillSignal } from './model.js';
import type { SentenceSignals, SkillTagger } from './tagger.js';

export type SkillsVariant = 'trie' | 'bm25' | 'tfidf_char' | 'semantic' | 'combined';
export const SKILLS_VARIANTS = ['trie', 'bm25', 'tfidf_char', 'semantic', 'combined'] as const satisfies readonly SkillsVariant[];
export const DEFAULT_SKILLS_METRICS = ['rp@5', 'rp@10', 'mrr'] as const;

export interface SetScores {
  precision: number;
  recall: number;
  f1: number;
  emitted: number;
  gold: number;
}

export interface SkillsSplitReport {
  split: string;
  queries: number;
  ranking: Record<SkillsVariant, Record<string, number>>;
  extraction: Record<'trie' | 'semantic' | 'combined', SetScores>;
}

/** Ranks skills in list order; everything else −∞ (ties among the rest break by taxonomy order). */
function listRow(c: Candidates, numDocs: number, out: Float32Array): void {
  out.fill(-Infinity);
  c.docs.forEach((doc, i) => (out[doc] = c.docs.length - i));
}

function setScores(pairs: ReadonlyArray<{ emitted: ReadonlySet<number>; gold: ReadonlySet<number> }>): SetScores {
  let tp = 0;
  let emitted = 0;
  let gold = 0;
  for (const p of pairs) {
    emitted += p.emitted.size;
    gold += p.gold.size;
    for (const s of p.emitted) if (p.gold.has(s)) tp++;
  }
  const precision = emitted === 0 ? 0 : tp / emitted;
  const recall = gold === 0 ? 0 : tp / gold;
  return { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), emitted, gold };
}

/** Every tagger's full ranking of the taxonomy for each of the split's sentences. */
export async function splitSignals(tagger: SkillTagger, split: RetrievalSplit): Promise<SentenceSignals[]> {
  const skills = tagger.files.skills;
  if (split.corpus.length !== skills.length || split.corpus.some((d, i) => d.id !== skills[i]!.id)) {
    throw new Error(`${split.name}: its corpus is not the skills model's taxonomy (${split.corpus.length} vs ${skills.length} skills, in ESCO file order)`);
  }
  return tagger.signals(
    split.queries.map((q) => q.text),
    skills.length,
  );
}

/** The extraction scores of each variant at the given semantic settings (default: the tagger's). */
export function extractionScores(tagger: SkillTagger, split: RetrievalSplit, signals: readonly SentenceSignals[], options: { threshold?: number; topK?: number } = {}): SkillsSplitReport['extraction'] {
  const threshold = options.threshold ?? tagger.settings.semantic.threshold;
  const topK = options.topK ?? tagger.settings.semantic.topK;
  const { minWords } = tagger.settings.semantic;
  const gold = split.queries.map((q) => new Set(q.relevant));
  return {
    trie: setScores(signals.map((s, q) => ({ emitted: new Set(s.rankings.trie.docs), gold: gold[q]! }))),
    semantic: setScores(
      signals.map((s, q) => {
        const dense = s.rankings.dense;
        const emitted = new Set<number>();
        const k = s.words < minWords ? 0 : topK;
        for (let i = 0; i < dense.docs.length && emitted.size < k && dense.scores[i]! >= threshold; i++) emitted.add(dense.docs[i]!);
        return { emitted, gold: gold[q]! };
      }),
    ),
    combined: setScores(signals.map((s, q) => ({ emitted: new Set(tagger.sentenceSkills(s, { threshold, topK }).map((e) => e.skill)), gold: gold[q]! }))),
  };
}

/** Evaluates one split (its corpus must be the tagger's taxonomy, in order). */
export async function evaluateSkillsSplit(tagger: SkillTagger, split: RetrievalSplit, metrics: readonly string[] = DEFAULT_SKILLS_METRICS, signals?: readonly SentenceSignals[]): Promise<SkillsSplitReport> {
  const numDocs = tagger.files.skills.length;
  const all = signals ?? (await splitSignals(tagger, split));
  const rankingOf = (variant: SkillsVariant, s: SentenceSignals): Candidates => {
    if (variant === 'combined') {
      const fused = tagger.fuse(s);
      return { docs: Int32Array.from(fused, (h) => h.doc), scores: Float32Array.from(fused, (h) => h.score) };
    }
    const signal: SkillSignal = variant === 'semantic' ? 'dense' : variant;
    return s.rankings[signal];
  };
  const ranking = {} as Record<SkillsVariant, Record<string, number>>;
  for (const variant of SKILLS_VARIANTS) {
    const scorer: RetrievalScorer = {
      scoreRows(start, end) {
        const rows = new Float32Array((end - start) * numDocs);
        for (let q = start; q < end; q++) listRow(rankingOf(variant, all[q]!), numDocs, rows.subarray((q - start) * numDocs, (q - start + 1) * numDocs));
        return rows;
      },
    };
    ranking[variant] = evaluateRetrieval(split, scorer, metrics);
  }
  return { split: split.name, queries: split.queries.length, ranking, extraction: extractionScores(tagger, split, all) };
}

export const THRESHOLD_GRID: readonly number[] = Array.from({ length: 9 }, (_, i) => 0.4 + 0.05 * i);
export const TOP_K_GRID: readonly number[] = [1, 2, 3, 5];

export interface TuneResult {
  threshold: number;
  topK: number;
  /** Mean over the splits of the combined extraction's F1. */
  f1: number;
  grid: Array<{ threshold: number; topK: number; f1: number }>;
}

/**
 * The semantic tagger's threshold and top k that maximise the combined extraction's F1, averaged
 * over the splits (validation splits only: the caller's job). Ties go to the higher threshold
 * (fewer emissions), then the smaller k.
 */
export function tuneExtraction(tagger: SkillTagger, splits: ReadonlyArray<{ split: RetrievalSplit; signals: readonly SentenceSignals[] }>): TuneResult {
  const grid: TuneResult['grid'] = [];
  for (const threshold of THRESHOLD_GRID) {
    for (const topK of TOP_K_GRID) {
      const f1 = splits.reduce((sum, { split, signals }) => sum + extractionScores(tagger, split, signals, { threshold, topK }).combined.f1, 0) / splits.length;
      grid.push({ threshold: Number(threshold.toFixed(2)), topK, f1 });
    }
  }
  const best = grid.reduce((a, b) => (b.f1 > a.f1 + 1e-12 || (Math.abs(b.f1 - a.f1) <= 1e-12 && (b.threshold > a.threshold || (b.threshold === a.threshold && b.topK < a.topK))) ? b : a));
  return { ...best, grid };
}

const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));

/** The table `kiln skills eval` prints: variants as rows, split × metric as columns (×100). */
export function formatSkillsReport(reports: readonly SkillsSplitReport[], metrics: readonly string[] = DEFAULT_SKILLS_METRICS): string {
  const header = ['ranking', ...reports.flatMap((r) => metrics.map((m) => `${shortName(r.split)} ${m}`))];
  const rows = SKILLS_VARIANTS.map((v) => [v, ...reports.flatMap((r) => metrics.map((m) => pct(r.ranking[v][m])))]);
  const extractionHeader = ['extraction', ...reports.flatMap((r) => ['P', 'R', 'F1'].map((m) => `${shortName(r.split)} ${m}`))];
  const extractionRows = (['trie', 'semantic', 'combined'] as const).map((v) => [v, ...reports.flatMap((r) => [r.extraction[v].precision, r.extraction[v].recall, r.extraction[v].f1].map(pct))]);
  return [table(header, rows), '', table(extractionHeader, extractionRows)].join('\n');
}

function shortName(split: string): string {
  return split.replace(/^skill-extraction\//, '').replace(/\/validation$/, '');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
