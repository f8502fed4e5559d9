/**
 * Recipe `esco-occupations` (pairs): job-title synonyms from ESCO v1.1.1 occupations
 * (esco-v1.1.1/occupations_en.csv, 3,007 occupations; European Commission, CC BY 4.0,
 * https://esco.ec.europa.eu/en/use-esco/download). Each alternative label is a 'title' query
 * whose positive is the occupation's preferred label (docType 'occupation'); optionally the
 * occupation description is a query too. `group` is the occupation's conceptUri, so two
 * synonyms of one occupation in a batch are not treated as negatives of each other.
 */
import { z } from 'zod';

import { escoPairs, loadEscoConcepts } from '../esco.js';
import { defineRecipe } from './recipe.js';

export const escoOccupations = defineRecipe({
  name: 'esco-occupations',
  kind: 'pairs',
  description: 'ESCO occupations: altLabel (and description) → preferredLabel pairs, grouped by conceptUri',
  options: z.strictObject({
    include_description: z.boolean().default(true).describe('also pair each occupation description with its preferred label'),
    include_hidden: z.boolean().default(false).describe('also use hiddenLabels (misspellings, outdated terms) as title queries'),
    description_query_type: z.string().min(1).default('description').describe('input type of description queries (selects the prompt template)'),
  }),
  run: async (ctx, o) => {
    const concepts = await loadEscoConcepts(ctx, 'occupations');
    return escoPairs(concepts, {
      labelQueryType: 'title',
      docType: 'occupation',
      includeDescription: o.include_description,
      descriptionQueryType: o.description_query_type,
      includeHidden: o.include_hidden,
    });
  },
});
