/**
 * Recipe `scored-pairs` (scored-pairs): your own (text a, text b, score) rows from CSV, TSV,
 * JSONL, Arrow or Parquet files. The score is a label (0 or 1) or a graded similarity; it is
 * rescaled from `score_range` into [0, 1], and a score outside the range is a bad row.
 *
 * As an evaluation split it is scored like STS-B (Spearman, Pearson, and ROC-AUC when the
 * labels are binary). As training data (`data.train`) each row becomes a pair whose positive
 * column has the row's score as its target: a loss that takes graded targets (bce; the
 * cross-encoder's default) learns it, with the batch's other documents as negatives, and the
 * config loader refuses losses that assume every pair is a positive (infonce, vp-matrix).
 */
import { z } from 'zod';

import type { ScoredTextPair } from '../types.js';
import { defineRecipe } from './recipe.js';
import { column, COLUMNS_DESCRIPTION, formatOption, forEachRecord, pathOption, resolvePathOption } from './file-source.js';

export const scoredPairs = defineRecipe({
  name: 'scored-pairs',
  kind: 'scored-pairs',
  description: 'Your own (text a, text b, score or label) rows from CSV, TSV, JSONL, Arrow or Parquet files',
  options: z
    .strictObject({
      path: pathOption,
      format: formatOption,
      columns: z
        .strictObject({
          a: column('first text (the query)', 'sentence1'),
          b: column('second text (the document)', 'sentence2'),
          score: column('score or 0/1 label', 'score'),
        })
        .prefault({})
        .describe(COLUMNS_DESCRIPTION),
      score_range: z
        .tuple([z.number(), z.number()])
        .default([0, 1])
        .describe('The scores\' [min, max] in the file, rescaled to [0, 1] (e.g. [0, 5] for STS-style scores)'),
      a_type: z.string().min(1).default('query').describe("Input type of text a (picks model.prompts' template)"),
      b_type: z.string().min(1).default('document').describe('Input type of text b'),
      b_side: z.enum(['query', 'doc']).default('doc').describe("Tower that embeds text b: 'doc' for query–document pairs, 'query' for symmetric pairs (paraphrases, STS)"),
    })
    .refine((o) => o.score_range[0] < o.score_range[1], { message: 'score_range must be [min, max] with min < max', path: ['score_range'] }),
  resolvePaths: (options, baseDir) => ({ ...options, path: resolvePathOption(options.path, baseDir) }),
  run: async (ctx, o) => {
    const out: ScoredTextPair[] = [];
    const [min, max] = o.score_range;
    await forEachRecord(ctx, { path: o.path, format: o.format, key: 'scored-pairs.path' }, [o.columns.a, o.columns.b, o.columns.score], (row) => {
      const a = row.text(o.columns.a);
      const b = row.text(o.columns.b);
      const score = (row.number(o.columns.score, { min, max }) - min) / (max - min);
      out.push({ a, b, score, source: row.source, aType: o.a_type, bType: o.b_type, bSide: o.b_side });
    });
    return out;
  },
});
