/**
 * Recipe `triplets` (pairs): your own (anchor, positive, negative) triplets from CSV, TSV,
 * JSONL, Arrow or Parquet files. Each negative is scored against every anchor of its batch
 * beside the in-batch positives (sentence-transformers' MultipleNegativesRankingLoss with hard
 * negatives, https://sbert.net/docs/sentence_transformer/loss_overview.html): a hard negative
 * picked by hand, or by a retriever, teaches the fine distinctions in-batch negatives rarely
 * show. `columns.negative` may list several columns (negative_1, negative_2, …): every
 * non-empty one is a negative of the row's anchor.
 */
import { z } from 'zod';

import type { PairExample } from '../types.js';
import { normalizeForOverlap, defineRecipe } from './recipe.js';
import { column, COLUMNS_DESCRIPTION, formatOption, forEachRecord, pathOption, resolvePathOption } from './file-source.js';

export const triplets = defineRecipe({
  name: 'triplets',
  kind: 'pairs',
  description: 'Your own (anchor, positive, negative) triplets from CSV, TSV, JSONL, Arrow or Parquet files',
  options: z.strictObject({
    path: pathOption,
    format: formatOption,
    columns: z
      .strictObject({
        anchor: column('anchor (query) text', 'anchor'),
        positive: column('positive (document) text', 'positive'),
        negative: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .default('negative')
          .describe('Column holding the negative text, or a list of columns for several negatives per row (the first is required, later ones may be empty)'),
      })
      .prefault({})
      .describe(COLUMNS_DESCRIPTION),
    query_type: z.string().min(1).default('query').describe("Input type of the anchors (picks model.prompts' template)"),
    doc_type: z.string().min(1).default('document').describe('Input type of the positives and negatives'),
  }),
  resolvePaths: (options, baseDir) => ({ ...options, path: resolvePathOption(options.path, baseDir) }),
  run: async (ctx, o) => {
    const out: PairExample[] = [];
    const negativeColumns = typeof o.columns.negative === 'string' ? [o.columns.negative] : o.columns.negative;
    await forEachRecord(ctx, { path: o.path, format: o.format, key: 'triplets.path' }, [o.columns.anchor, o.columns.positive, ...negativeColumns], (row) => {
      const query = row.text(o.columns.anchor);
      const doc = row.text(o.columns.positive);
      const [first, ...rest] = negativeColumns as [string, ...string[]];
      const negatives = [row.text(first), ...rest.map((c) => row.optionalText(c)).filter((t) => t !== '')];
      if (negatives.some((n) => normalizeForOverlap(n) === normalizeForOverlap(doc))) throw row.error('a negative equals the positive; expected a different text');
      out.push({ query, doc, group: `doc:${normalizeForOverlap(doc)}`, queryType: o.query_type, docType: o.doc_type, source: row.source, negatives });
    });
    return out;
  },
});
