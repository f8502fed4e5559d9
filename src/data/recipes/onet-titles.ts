/**
 * Recipe `onet-titles` (pairs): job-title synonyms from the O*NET 29.2 database (Feb 2025;
 * O*NET Resource Center, USDOL/ETA, CC BY 4.0; https://www.onetcenter.org/database.html).
 * 'Alternate Titles.txt' (56,560 rows) gives alternate titles, each paired with its
 * occupation's Title from 'Occupation Data.txt' (1,016 occupations); optionally the task
 * statements of 'Task Statements.txt' (18,796) are queries too. `group` is 'onet:' + the
 * O*NET-SOC code. The files are tab-separated with CRLF line ends and no quoting.
 */
import { z } from 'zod';

import { forEachRow, readTsv, requireFiles } from '../files.js';
import type { PairExample } from '../types.js';
import { cleanText, defineRecipe } from './recipe.js';

const CODE = 'O*NET-SOC Code';
export const ONET_FILES = {
  occupations: 'onet-29.2/Occupation Data.txt',
  alternateTitles: 'onet-29.2/Alternate Titles.txt',
  tasks: 'onet-29.2/Task Statements.txt',
} as const;

export const onetTitles = defineRecipe({
  name: 'onet-titles',
  kind: 'pairs',
  description: 'O*NET 29.2: alternate title (and task statement) → occupation title pairs, grouped by O*NET-SOC code',
  options: z.strictObject({
    include_tasks: z.boolean().default(false).describe('also pair each task statement with its occupation title'),
    task_query_type: z.string().min(1).default('sentence').describe('input type of task-statement queries'),
  }),
  run: async (ctx, o) => {
    const files = [ONET_FILES.occupations, ONET_FILES.alternateTitles, ...(o.include_tasks ? [ONET_FILES.tasks] : [])];
    requireFiles(ctx, 'onet', files);

    const titles = new Map<string, { title: string; seen: Set<string> }>();
    await forEachRow(ctx, readTsv(ctx.dataRoot, ONET_FILES.occupations, { columns: 'header', required: [CODE, 'Title'] }), (row) => {
      const code = row.text(CODE);
      if (titles.has(code)) throw row.error(`O*NET-SOC code ${code} appears twice`);
      const title = cleanText(row.text('Title'));
      titles.set(code, { title, seen: new Set([title.toLowerCase()]) });
    });

    const out: PairExample[] = [];
    const lookup = (code: string, fail: (reason: string) => Error): { title: string; seen: Set<string> } => {
      const entry = titles.get(code);
      if (entry === undefined) throw fail(`O*NET-SOC code ${code} is not in ${ONET_FILES.occupations}`);
      return entry;
    };
    await forEachRow(ctx, readTsv(ctx.dataRoot, ONET_FILES.alternateTitles, { columns: 'header', required: [CODE, 'Alternate Title'] }), (row) => {
      const code = row.text(CODE);
      const entry = lookup(code, (r) => row.error(r));
      const alt = cleanText(row.text('Alternate Title'));
      const key = alt.toLowerCase();
      if (entry.seen.has(key)) return;
      entry.seen.add(key);
      out.push({ query: alt, doc: entry.title, group: `onet:${code}`, queryType: 'title', docType: 'occupation', source: row.source });
    });
    if (o.include_tasks) {
      await forEachRow(ctx, readTsv(ctx.dataRoot, ONET_FILES.tasks, { columns: 'header', required: [CODE, 'Task'] }), (row) => {
        const code = row.text(CODE);
        const entry = lookup(code, (r) => row.error(r));
        out.push({ query: cleanText(row.text('Task')), doc: entry.title, group: `onet:${code}`, queryType: o.task_query_type, docType: 'occupation', source: row.source });
      });
    }
    return out;
  },
});
