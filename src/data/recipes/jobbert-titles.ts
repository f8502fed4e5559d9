/**
 * Recipe `jobbert-titles` (retrieval): job-title normalisation, the JobBERT evaluation set
 * (Decorte et al. 2021, "JobBERT: Understanding Job Titles through Skills", FEAST workshop;
 * https://github.com/jensjorisdecorte/JobBERT-evaluation-dataset; vacancy titles from the
 * Malaysian job board myfuturejobs.gov.my, each mapped to an ESCO occupation).
 * Queries are vacancy titles ('title'); the corpus is ALL 3,007 ESCO v1.1.1 occupations
 * (preferred labels, 'occupation'); a query's one relevant document is the occupation of its
 * conceptUri. titles.csv is the validation split (15,463 rows, 15,462 of whose URIs resolve in
 * ESCO v1.1.1: the other row is a bad row, so load it with onBadRow 'skip' to use the rest);
 * titles.test.csv is the test split.
 */
import { z } from 'zod';

import { ESCO_FILES, loadEscoConcepts } from '../esco.js';
import { forEachRow, readCsv, requireFiles } from '../files.js';
import type { RetrievalSplit } from '../types.js';
import { cleanText, defineRecipe, makeLabelledPairs } from './recipe.js';

export const JOBBERT_FILES = { validation: 'jobbert-titles/titles.csv', test: 'jobbert-titles/titles.test.csv' } as const;

export const jobbertTitles = defineRecipe({
  name: 'jobbert-titles',
  kind: 'retrieval',
  description: 'JobBERT vacancy titles ranked against all ESCO occupations (job-title normalisation)',
  options: z.strictObject({
    split: z.enum(['validation', 'test']).default('validation').describe('validation = titles.csv; test = titles.test.csv'),
  }),
  run: async (ctx, o) => {
    const rel = JOBBERT_FILES[o.split];
    requireFiles(ctx, 'jobbert', [rel]);
    requireFiles(ctx, 'esco', [ESCO_FILES.occupations]);
    const occupations = await loadEscoConcepts(ctx, 'occupations');
    const byUri = new Map(occupations.map((c, i) => [c.uri, i]));

    const queries: RetrievalSplit['queries'] = [];
    await forEachRow(ctx, readCsv(ctx.dataRoot, rel, { required: ['', 'vacancyTitle', 'conceptUri'] }), (row) => {
      const text = cleanText(row.text('vacancyTitle'));
      const uri = row.text('conceptUri');
      const doc = byUri.get(uri);
      if (doc === undefined) throw row.error(`conceptUri ${uri} is not an occupation in ${ESCO_FILES.occupations}`);
      const index = row.optional('');
      queries.push({ id: index === '' ? `line${row.line}` : index, text, relevant: [doc], source: row.source });
    });

    const name = `jobbert-titles/${o.split}`;
    return {
      name,
      queryType: 'title',
      docType: 'occupation',
      queries,
      corpus: occupations.map((c) => ({ id: c.uri, text: c.preferredLabel, labels: c.altLabels })),
      labelledPairs: makeLabelledPairs(queries, occupations.length, ctx.seed, name),
    };
  },
});
