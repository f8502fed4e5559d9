/**
 * Recipe `skillspan-weak` (pairs): weak labels for the semantic skill tagger. Each SkillSpan
 * (Zhang et al. 2022, NAACL; MIT) job-posting sentence is paired with every ESCO skill that the
 * taxonomy trie (../skill-trie.ts: ESCO labels and Stack Overflow synonyms) finds in it: query =
 * the sentence ('sentence'), doc = the skill's ESCO preferred label ('skill'), group = the
 * skill's URI.
 *
 * This is distant supervision, as in Decorte et al. 2022 ("Design of Negative Sampling
 * Strategies for Distantly Supervised Skill Extraction"): the labels come from string matches,
 * not annotators, so they are noisy (a match can be a homonym) and biased to skills named
 * verbatim. The two-tower model trained on them still generalises past the strings, because the
 * query is the whole sentence: it learns which contexts go with which skill, which is what lets
 * it tag a skill that a sentence implies without naming. Unlike `skillspan-pairs`, whose
 * documents are span phrases, the documents here are the taxonomy's own skills, the corpus the
 * tagger ranks.
 *
 * A trie match that names more than `max_skills_per_match` skills (a label several concepts
 * share) is too ambiguous to teach anything and is skipped. Use the train split: the TECH and
 * HOUSE evaluation sentences come from SkillSpan's dev and test postings.
 */
import { z } from 'zod';

import { buildTaxonomyTrie } from '../skill-labels.js';
import { LABEL_SOURCES } from '../skill-trie.js';
import type { PairExample } from '../types.js';
import { defineRecipe } from './recipe.js';
import { skillspan } from './skillspan.js';

export const skillspanWeak = defineRecipe({
  name: 'skillspan-weak',
  kind: 'pairs',
  description: 'SkillSpan sentences paired with the ESCO skills the taxonomy trie finds in them (weak labels)',
  options: z.strictObject({
    split: z.enum(['train', 'dev']).default('train').describe('json/<split>.json (TECH/HOUSE evaluation sentences come from dev and test)'),
    subset: z.enum(['tech', 'house', 'all']).default('all').describe('postings source'),
    sources: z
      .array(z.enum(LABEL_SOURCES))
      .min(1)
      .default([...LABEL_SOURCES])
      .describe('which trie labels count: preferred, alt (ESCO alternative labels), stackoverflow (tag synonyms)'),
    max_skills_per_match: z.number().int().min(1).default(2).describe('skip a match whose label names more skills than this'),
  }),
  run: async (ctx, o) => {
    const [{ trie, skills }, sentences] = await Promise.all([buildTaxonomyTrie(ctx), skillspan.load(ctx, { split: o.split, subset: o.subset })]);
    const sources = new Set<string>(o.sources);
    const pairs: PairExample[] = [];
    for (const sentence of sentences) {
      const seen = new Set<number>();
      for (const match of trie.match(sentence.text)) {
        if (!sources.has(match.source) || match.skills.length > o.max_skills_per_match) continue;
        for (const skill of match.skills) {
          if (seen.has(skill)) continue;
          seen.add(skill);
          const concept = skills[skill]!;
          pairs.push({ query: sentence.text, doc: concept.preferredLabel, group: concept.uri, queryType: 'sentence', docType: 'skill', source: sentence.source });
        }
      }
    }
    return pairs;
  },
});
