/**
 * Recipe `stsb` (scored-pairs): the STS Benchmark (Cer et al. 2017, SemEval-2017 Task 1;
 * scores CC BY-SA 4.0, sentences under their sources' licences;
 * https://ixa2.si.ehu.eus/stswiki/index.php/STSbenchmark), original distribution:
 * stsbenchmark/sts-{train,dev,test}.csv, tab-separated, no header, NO quote handling (sentences
 * contain bare `"`): genre, file, year, id, score (0..5), sentence1, sentence2, and on forum
 * rows 2 extra attribution columns. train 5,749 / dev 1,500 / test 1,379 (withheld here).
 */
import { z } from 'zod';

import { forEachRow, readTsv, requireFiles } from '../files.js';
import type { ScoredTextPair } from '../types.js';
import { defineRecipe } from './recipe.js';

const COLUMNS = ['genre', 'file', 'year', 'id', 'score', 'sentence1', 'sentence2'] as const;

export const stsb = defineRecipe({
  name: 'stsb',
  kind: 'scored-pairs',
  description: 'STS Benchmark sentence pairs with 0..5 similarity scores',
  options: z.strictObject({
    split: z.enum(['train', 'dev', 'test']).default('dev').describe('sts-<split>.csv; test is withheld from the shared data root'),
    scale: z.enum(['raw', 'unit']).default('raw').describe("'raw' keeps the 0..5 score, 'unit' divides it by 5"),
  }),
  run: async (ctx, o) => {
    const rel = `stsbenchmark/sts-${o.split}.csv`;
    requireFiles(ctx, 'stsb', [rel]);
    const out: ScoredTextPair[] = [];
    await forEachRow(ctx, readTsv(ctx.dataRoot, rel, { columns: COLUMNS }), (row) => {
      const score = row.number('score', { min: 0, max: 5 });
      out.push({ a: row.text('sentence1'), b: row.text('sentence2'), score: o.scale === 'unit' ? score / 5 : score, source: row.source });
    });
    return out;
  },
});
