/**
 * Span-level precision and recall of a tagger's spans against gold spans, micro-averaged over
 * sentences, under two matching rules. Spans are character offsets [start, end), end exclusive.
 *
 * Spans are sets. Within one sentence, the gold spans and the predicted spans are each reduced to
 * their distinct [start, end) pairs first: in SkillSpan a skill span and a knowledge span over
 * the same characters are one gold span (the gold is the union of both kinds, and a prediction
 * matching it counts once), and a prediction repeated is one prediction. Kinds are not compared:
 * a tagger that only finds spans is scored on finding them.
 *
 * Exact (strict) match, as the CoNLL shared tasks' conlleval script and seqeval score entities
 * (Tjong Kim Sang & De Meulder 2003, "Introduction to the CoNLL-2003 Shared Task", CoNLL;
 * Nakayama 2018, seqeval), without the type check:
 *
 *     TP        = |P ∩ G|                      (same start and same end)
 *     precision = TP / |P|,   recall = TP / |G|,   F1 = 2·p·r / (p + r)
 *
 * Partial (overlap) match: the "partial boundary match, regardless of type" scheme of
 * SemEval-2013 Task 9.1 (Segura-Bedmar, Martínez & Herrero-Zazo 2013, "SemEval-2013 Task 9:
 * Extraction of Drug-Drug Interactions from Biomedical Texts", SemEval), in simplified form.
 * There, each prediction is aligned to one gold entity and an overlapping but unequal one earns
 * half credit (precision = (COR + 0.5·PAR) / ACT, as D. Batista's nervaluate writes it out).
 * Here an overlap of at least one character earns full credit and nothing is aligned one to one,
 * so precision and recall count separately:
 *
 *     overlap(a, b) ⇔ a.start < b.end ∧ b.start < a.end          (at least one character)
 *     precisionTp   = #{ p ∈ P : ∃ g ∈ G, overlap(p, g) }
 *     recallTp      = #{ g ∈ G : ∃ p ∈ P, overlap(p, g) }
 *     precision = precisionTp / |P|,   recall = recallTp / |G|,   F1 = 2·p·r / (p + r)
 *
 * |P|, |G| and the true positives are summed over all sentences before dividing (micro average);
 * a ratio of 0 / 0 is 0, and so is F1 when p + r = 0.
 *
 * @example
 * scoreSpans([{ gold: [{ start: 0, end: 6 }, { start: 11, end: 21 }], predicted: [{ start: 0, end: 6 }, { start: 11, end: 15 }] }]);
 * // exact: tp 1, precision 0.5, recall 0.5; partial: precisionTp 2, recallTp 2, precision 1, recall 1
 */
import type { SkillTrie } from '../data/skill-trie.js';
import { skillspan } from '../data/recipes/skillspan.js';
import type { RecipeContext } from '../data/types.js';

/** A character span [start, end), end exclusive. */
export interface CharSpan {
  readonly start: number;
  readonly end: number;
}

/** One sentence's gold and predicted spans. */
export interface SpanSentence {
  readonly gold: readonly CharSpan[];
  readonly predicted: readonly CharSpan[];
}

export interface SpanScores {
  /** Distinct predicted spans, summed over sentences. */
  predicted: number;
  /** Distinct gold spans, summed over sentences. */
  gold: number;
  exact: { tp: number; precision: number; recall: number; f1: number };
  partial: { precisionTp: number; recallTp: number; precision: number; recall: number; f1: number };
}

/** a / b, with 0 / 0 = 0. */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

function f1(precision: number, recall: number): number {
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

/** The distinct spans of a list, sorted by start then end; throws on a span that is not a non-empty [start, end). */
function distinct(spans: readonly CharSpan[], what: string, sentence: number): CharSpan[] {
  const seen = new Set<string>();
  const out: CharSpan[] = [];
  for (const s of spans) {
    if (!Number.isInteger(s.start) || !Number.isInteger(s.end) || s.start < 0 || s.end <= s.start) {
      throw new RangeError(`scoreSpans: sentence ${sentence}: ${what} span [${s.start}, ${s.end}) is not a character span; expected integers 0 <= start < end (end exclusive)`);
    }
    const key = `${s.start}:${s.end}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  return out.sort((a, b) => a.start - b.start || a.end - b.end);
}

const overlaps = (a: CharSpan, b: CharSpan): boolean => a.start < b.end && b.start < a.end;

/** Exact and partial span precision/recall/F1, micro-averaged over `sentences` (see the header). */
export function scoreSpans(sentences: Iterable<SpanSentence>): SpanScores {
  let predicted = 0;
  let gold = 0;
  let exactTp = 0;
  let precisionTp = 0;
  let recallTp = 0;
  let index = 0;
  for (const sentence of sentences) {
    const g = distinct(sentence.gold, 'gold', index);
    const p = distinct(sentence.predicted, 'predicted', index);
    index++;
    predicted += p.length;
    gold += g.length;
    const goldKeys = new Set(g.map((s) => `${s.start}:${s.end}`));
    for (const s of p) if (goldKeys.has(`${s.start}:${s.end}`)) exactTp++;
    // A sentence holds a handful of spans: the quadratic scan is the clear one.
    for (const s of p) if (g.some((t) => overlaps(s, t))) precisionTp++;
    for (const t of g) if (p.some((s) => overlaps(s, t))) recallTp++;
  }
  const ep = ratio(exactTp, predicted);
  const er = ratio(exactTp, gold);
  const pp = ratio(precisionTp, predicted);
  const pr = ratio(recallTp, gold);
  return {
    predicted,
    gold,
    exact: { tp: exactTp, precision: ep, recall: er, f1: f1(ep, er) },
    partial: { precisionTp, recallTp, precision: pp, recall: pr, f1: f1(pp, pr) },
  };
}

/**
 * The taxonomy trie's matches on SkillSpan's `split` (both subsets, tech and house) scored
 * against the sentences' skill and knowledge spans (their union), with the number of sentences.
 *
 * @example
 * const ctx = createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' });
 * const { trie } = await buildTaxonomyTrie(ctx);
 * const s = await trieSpanScores(ctx, trie); // SkillSpan dev: 3,174 sentences
 * console.log(s.exact.f1, s.partial.f1);
 */
export async function trieSpanScores(ctx: RecipeContext, trie: SkillTrie, split: 'dev' | 'train' = 'dev'): Promise<SpanScores & { sentences: number }> {
  const examples = await skillspan.load(ctx, { split, subset: 'all' });
  const scores = scoreSpans(examples.map((e) => ({ gold: e.spans, predicted: trie.match(e.text) })));
  return { ...scores, sentences: examples.length };
}
