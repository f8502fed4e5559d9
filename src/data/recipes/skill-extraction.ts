/**
 * Recipe `skill-extraction` (retrieval): the TECH / HOUSE / TECHWOLF skill-extraction benchmark
 * (Decorte et al. 2022, "Design of Negative Sampling Strategies for Distantly Supervised Skill
 * Extraction", RecSys-in-HR; Decorte et al. 2023, "Extreme Multi-Label Skill Extraction
 * Training using Large Language Models", arXiv 2307.10778;
 * https://github.com/jensjorisdecorte/Skill-Extraction-benchmark). TECH and HOUSE sentences
 * come from SkillSpan (Zhang et al. 2022, MIT).
 *
 * The published protocol: the annotation files have one row per (sentence, span, label); rows
 * are grouped by sentence, labels that are not ESCO preferred labels (LABEL NOT PRESENT,
 * UNDERSPECIFIED, anything not in skills_en.csv) are dropped, and sentences left with no
 * label are dropped. Each remaining sentence is a 'sentence' query ranked against all 13,896
 * ESCO v1.1.1 skills ('skill', preferred labels). Labels are matched exactly (case and
 * spacing included): every label in the published files occurs verbatim as a v1.1.1
 * preferredLabel, so no looser matching is needed or done.
 */
import { z } from 'zod';

import { ESCO_FILES, loadEscoConcepts } from '../esco.js';
import { forEachRow, readCsv, requireFiles } from '../files.js';
import type { RetrievalSplit } from '../types.js';
import { cleanText, defineRecipe, makeLabelledPairs } from './recipe.js';

export function skillExtractionFile(subset: 'tech' | 'house' | 'techwolf', split: 'validation' | 'test'): string {
  return `skill-extraction-benchmark/data/${subset}_${split}_annotations.csv`;
}

/** Labels the annotators used for spans without a (specific enough) ESCO skill. */
export const NON_SKILL_LABELS = ['LABEL NOT PRESENT', 'UNDERSPECIFIED'] as const;

export interface AnnotationGroup {
  sentence: string;
  /** Source of the sentence's first row. */
  source: string;
  /** Distinct labels in first-seen order (before filtering). */
  labels: string[];
}

/**
 * The protocol's filter on grouped annotations: keeps labels that are ESCO preferred labels,
 * drops sentences left without one. Returns the queries (relevant = sorted corpus indices)
 * and what was dropped.
 */
export function applyProtocol(
  groups: readonly AnnotationGroup[],
  labelIndex: ReadonlyMap<string, number>,
  idPrefix: string,
): { queries: RetrievalSplit['queries']; droppedLabels: Map<string, number>; droppedSentences: number } {
  const queries: RetrievalSplit['queries'] = [];
  const droppedLabels = new Map<string, number>();
  let droppedSentences = 0;
  for (const g of groups) {
    const relevant = new Set<number>();
    for (const label of g.labels) {
      const doc = labelIndex.get(label);
      if (doc === undefined) droppedLabels.set(label, (droppedLabels.get(label) ?? 0) + 1);
      else relevant.add(doc);
    }
    if (relevant.size === 0) {
      droppedSentences++;
      continue;
    }
    queries.push({ id: `${idPrefix}${queries.length}`, text: cleanText(g.sentence), relevant: [...relevant].sort((a, b) => a - b), source: g.source });
  }
  return { queries, droppedLabels, droppedSentences };
}

export const skillExtraction = defineRecipe({
  name: 'skill-extraction',
  kind: 'retrieval',
  description: 'TECH/HOUSE/TECHWOLF job-ad sentences ranked against all ESCO skills (Decorte et al. 2023 protocol)',
  options: z.strictObject({
    subset: z.enum(['tech', 'house', 'techwolf']).describe('tech and house come from SkillSpan postings; techwolf has a test split only'),
    split: z.enum(['validation', 'test']).default('validation').describe('validation for development; test splits are withheld from the shared data root'),
  }),
  run: async (ctx, o) => {
    if (o.subset === 'techwolf' && o.split === 'validation') {
      throw new Error('recipe "skill-extraction": subset "techwolf" has no validation split (the benchmark publishes techwolf_test_annotations.csv only); use split "test"');
    }
    const rel = skillExtractionFile(o.subset, o.split);
    requireFiles(ctx, 'skill-extraction', [rel]);
    requireFiles(ctx, 'esco', [ESCO_FILES.skills]);
    const skills = await loadEscoConcepts(ctx, 'skills');
    const labelIndex = new Map<string, number>();
    skills.forEach((s, i) => {
      if (!labelIndex.has(s.preferredLabel)) labelIndex.set(s.preferredLabel, i);
    });

    const groups = new Map<string, AnnotationGroup>();
    await forEachRow(ctx, readCsv(ctx.dataRoot, rel, { required: ['sentence', 'label'] }), (row) => {
      const sentence = row.text('sentence');
      const label = cleanText(row.text('label'));
      let g = groups.get(sentence);
      if (g === undefined) {
        g = { sentence, source: row.source, labels: [] };
        groups.set(sentence, g);
      }
      if (!g.labels.includes(label)) g.labels.push(label);
    });

    const name = `skill-extraction/${o.subset}/${o.split}`;
    const { queries } = applyProtocol([...groups.values()], labelIndex, `${o.subset}-${o.split}-`);
    return {
      name,
      queryType: 'sentence',
      docType: 'skill',
      queries,
      corpus: skills.map((s) => ({ id: s.uri, text: s.preferredLabel, labels: s.altLabels })),
      labelledPairs: makeLabelledPairs(queries, skills.length, ctx.seed, name),
    };
  },
});
