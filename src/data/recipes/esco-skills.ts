/**
 * Recipe `esco-skills` (pairs): skill synonyms from ESCO v1.1.1 skills
 * (esco-v1.1.1/skills_en.csv, 13,896 skills; European Commission, CC BY 4.0,
 * https://esco.ec.europa.eu/en/use-esco/download). Each alternative label is a 'skill' query
 * whose positive is the skill's preferred label (docType 'skill'). Descriptions become queries
 * typed 'sentence' by default, because that is what skill-extraction queries look like (a
 * job-ad sentence matched to a skill). `group` is the skill's conceptUri.
 */
import { z } from 'zod';

import { escoPairs, loadEscoConcepts } from '../esco.js';
import { defineRecipe } from './recipe.js';

export const escoSkills = defineRecipe({
  name: 'esco-skills',
  kind: 'pairs',
  description: 'ESCO skills: altLabel (and description) → preferredLabel pairs, grouped by conceptUri',
  options: z.strictObject({
    include_description: z.boolean().default(true).describe('also pair each skill description with its preferred label'),
    include_hidden: z.boolean().default(false).describe('also use hiddenLabels as skill queries'),
    description_query_type: z.string().min(1).default('sentence').describe("input type of description queries (default 'sentence', like skill-extraction queries)"),
  }),
  run: async (ctx, o) => {
    const concepts = await loadEscoConcepts(ctx, 'skills');
    return escoPairs(concepts, {
      labelQueryType: 'skill',
      docType: 'skill',
      includeDescription: o.include_description,
      descriptionQueryType: o.description_query_type,
      includeHidden: o.include_hidden,
    });
  },
});
