/**
 * Recipe `skillspan-pairs` (pairs): SkillSpan (Zhang et al. 2022, NAACL; MIT) job-posting
 * sentences paired with each skill or knowledge span they contain: query = the sentence
 * (type 'sentence'), doc = the span's text (type 'skill'). It puts real job-ad sentences, the
 * queries of the TECH and HOUSE skill-extraction benchmarks, into training; the documents are
 * span phrases, not ESCO labels, so it teaches "which phrase of this sentence is a skill".
 * group = the lower-cased span text, so the same phrase in two sentences of a batch is not
 * used as a negative. Use the train split: TECH and HOUSE evaluation sentences come from
 * SkillSpan's dev and test splits (the trainer also drops any training query equal to an
 * evaluation query).
 */
import { z } from 'zod';

import { defineRecipe } from './recipe.js';
import { skillspan } from './skillspan.js';
import type { PairExample } from '../types.js';

export const skillspanPairs = defineRecipe({
  name: 'skillspan-pairs',
  kind: 'pairs',
  description: 'SkillSpan sentences paired with the skill/knowledge spans they contain',
  options: z.strictObject({
    split: z.enum(['train', 'dev']).default('train').describe('json/<split>.json (TECH/HOUSE evaluation sentences come from dev and test)'),
    subset: z.enum(['tech', 'house', 'all']).default('all').describe('postings source'),
    spans: z.enum(['skill', 'knowledge', 'both']).default('both').describe('which span kinds become documents'),
  }),
  run: async (ctx, o) => {
    const sentences = await skillspan.load(ctx, { split: o.split, subset: o.subset });
    const pairs: PairExample[] = [];
    for (const sentence of sentences) {
      for (const span of sentence.spans) {
        if (o.spans !== 'both' && span.kind !== o.spans) continue;
        pairs.push({ query: sentence.text, doc: span.text, group: `skillspan:${span.text.toLowerCase()}`, queryType: 'sentence', docType: 'skill', source: sentence.source });
      }
    }
    return pairs;
  },
});
