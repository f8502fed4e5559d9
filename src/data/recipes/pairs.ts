/**
 * Recipe `pairs` (pairs): your own (anchor, positive) pairs from CSV, TSV, JSONL, Arrow or
 * Parquet files, for contrastive training with in-batch negatives: every other positive of a
 * batch is a negative of each anchor (sentence-transformers' MultipleNegativesRankingLoss data
 * layout, https://sbert.net/docs/sentence_transformer/loss_overview.html).
 *
 * group: pairs that share a positive (after normalisation) are one group, so two anchors of the
 * same document in one batch are not each other's negatives; a `group` column, when mapped,
 * sets it explicitly (e.g. a product or concept id).
 */
import { z } from 'zod';

import type { PairExample } from '../types.js';
import { normalizeForOverlap, defineRecipe } from './recipe.js';
import { column, COLUMNS_DESCRIPTION, formatOption, forEachRecord, pathOption, resolvePathOption } from './file-source.js';

export const pairsColumns = z
  .strictObject({
    anchor: column('anchor (query) text', 'anchor'),
    positive: column('positive (document) text', 'positive'),
    group: z.string().min(1).optional().describe('Column holding a group id: pairs of one group are never each other\'s negatives (default: the normalised positive text)'),
  })
  .prefault({})
  .describe(COLUMNS_DESCRIPTION);

export const pairs = defineRecipe({
  name: 'pairs',
  kind: 'pairs',
  description: 'Your own (anchor, positive) pairs from CSV, TSV, JSONL, Arrow or Parquet files',
  options: z.strictObject({
    path: pathOption,
    format: formatOption,
    columns: pairsColumns,
    query_type: z.string().min(1).default('query').describe("Input type of the anchors (picks model.prompts' template)"),
    doc_type: z.string().min(1).default('document').describe('Input type of the positives'),
  }),
  resolvePaths: (options, baseDir) => ({ ...options, path: resolvePathOption(options.path, baseDir) }),
  run: async (ctx, o) => {
    const out: PairExample[] = [];
    const required = [o.columns.anchor, o.columns.positive, ...(o.columns.group === undefined ? [] : [o.columns.group])];
    await forEachRecord(ctx, { path: o.path, format: o.format, key: 'pairs.path' }, required, (row) => {
      const query = row.text(o.columns.anchor);
      const doc = row.text(o.columns.positive);
      const group = o.columns.group === undefined ? `doc:${normalizeForOverlap(doc)}` : `group:${row.text(o.columns.group)}`;
      out.push({ query, doc, group, queryType: o.query_type, docType: o.doc_type, source: row.source });
    });
    return out;
  },
});
