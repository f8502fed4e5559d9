/**
 * Recipe `retrieval` (retrieval): your own queries, corpus and relevance judgements, in the
 * BEIR layout (Thakur et al. 2021, https://github.com/beir-cellar/beir): `corpus.jsonl`
 * ({"_id", "title", "text"}), `queries.jsonl` ({"_id", "text"}) and `qrels/<split>.tsv`
 * (query-id, corpus-id, score, with a header line). `dir` names a BEIR folder; `corpus`,
 * `queries` and `qrels` name the files one by one instead (any format of src/data/records.ts,
 * columns mapped).
 *
 * A judgement with score ≥ `min_score` marks a relevant document (BEIR counts score > 0);
 * queries with no relevant document are dropped, as BEIR's evaluation drops them. A judgement
 * naming an unknown query or document is a bad row. Documents are `title text` when a title is
 * present (BEIR's own concatenation), or the text alone with `title: ignore`.
 *
 * As an evaluation split it is ranked against the whole corpus with the configured metrics
 * (recall@k, MRR, nDCG, ROC-AUC). As training data each (query, relevant document) judgement
 * is a training pair, grouped by document.
 */
import { join } from 'node:path';

import { z } from 'zod';

import type { CorpusDocument, RecipeContext, RetrievalSplit } from '../types.js';
import { defineRecipe, makeLabelledPairs } from './recipe.js';
import { column, formatOption, forEachRecord, pathOption, resolvePathOption } from './file-source.js';

const options = z
  .strictObject({
    dir: z.string().min(1).optional().describe('A BEIR folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv (relative paths are relative to the config file)'),
    corpus: pathOption.optional().describe('The corpus file(s), instead of <dir>/corpus.jsonl'),
    queries: pathOption.optional().describe('The queries file(s), instead of <dir>/queries.jsonl'),
    qrels: pathOption.optional().describe('The relevance judgements, instead of <dir>/qrels/<split>.tsv'),
    split: z.string().min(1).default('test').describe('With dir: which qrels/<split>.tsv to read'),
    format: formatOption,
    corpus_columns: z
      .strictObject({ id: column('document id', '_id'), text: column('document text', 'text'), title: column('document title (optional per row)', 'title') })
      .prefault({})
      .describe('Columns of the corpus file'),
    query_columns: z.strictObject({ id: column('query id', '_id'), text: column('query text', 'text') }).prefault({}).describe('Columns of the queries file'),
    qrels_columns: z
      .strictObject({ query: column('query id', 'query-id'), doc: column('document id', 'corpus-id'), score: column('relevance score', 'score') })
      .prefault({})
      .describe('Columns of the qrels file'),
    title: z.enum(['prepend', 'ignore']).default('prepend').describe("prepend: a document is 'title text' (BEIR's concatenation); ignore: the text alone"),
    min_score: z.number().default(1).describe('A judgement with score ≥ min_score marks a relevant document'),
    name: z.string().min(1).default('retrieval').describe('Split name in reports'),
    query_type: z.string().min(1).default('query').describe("Input type of the queries (picks model.prompts' template)"),
    doc_type: z.string().min(1).default('document').describe('Input type of the documents'),
  })
  .refine((o) => o.dir !== undefined || (o.corpus !== undefined && o.queries !== undefined && o.qrels !== undefined), {
    message: 'give dir (a BEIR folder), or all of corpus, queries and qrels',
  });

type Options = z.output<typeof options>;

/** The three files: the explicit ones, else the BEIR layout under `dir`. */
function filesOf(o: Options): { corpus: string | string[]; queries: string | string[]; qrels: string | string[] } {
  const inDir = (rel: string): string => join(o.dir ?? '.', rel);
  return {
    corpus: o.corpus ?? inDir('corpus.jsonl'),
    queries: o.queries ?? inDir('queries.jsonl'),
    qrels: o.qrels ?? inDir(join('qrels', `${o.split}.tsv`)),
  };
}

async function readCorpus(ctx: RecipeContext, o: Options, path: string | string[]): Promise<{ corpus: CorpusDocument[]; index: Map<string, number> }> {
  const corpus: CorpusDocument[] = [];
  const index = new Map<string, number>();
  const c = o.corpus_columns;
  await forEachRecord(ctx, { path, format: o.format, key: 'retrieval.corpus' }, [c.id, c.text], (row) => {
    const id = row.text(c.id);
    if (index.has(id)) throw row.error(`document id ${JSON.stringify(id)} appears twice; expected unique ids`);
    const body = row.optionalText(c.text);
    const title = o.title === 'prepend' ? row.optionalText(c.title) : '';
    const text = [title, body].filter((t) => t !== '').join(' ');
    if (text === '') throw row.error(`document ${JSON.stringify(id)} has no text (column "${c.text}"${o.title === 'prepend' ? ` nor "${c.title}"` : ''} is empty)`);
    index.set(id, corpus.length);
    corpus.push({ id, text });
  });
  return { corpus, index };
}

export const retrieval = defineRecipe({
  name: 'retrieval',
  kind: 'retrieval',
  description: 'Your own queries, corpus and relevance judgements (BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv)',
  options,
  resolvePaths: (raw, baseDir) => {
    const out: Record<string, unknown> = { ...raw };
    for (const key of ['dir', 'corpus', 'queries', 'qrels'] as const) if (raw[key] !== undefined) out[key] = resolvePathOption(raw[key], baseDir);
    return out;
  },
  run: async (ctx, o) => {
    const files = filesOf(o);
    const { corpus, index } = await readCorpus(ctx, o, files.corpus);
    const queries: Array<{ id: string; text: string; source: string }> = [];
    const queryIndex = new Map<string, number>();
    const q = o.query_columns;
    await forEachRecord(ctx, { path: files.queries, format: o.format, key: 'retrieval.queries' }, [q.id, q.text], (row) => {
      const id = row.text(q.id);
      if (queryIndex.has(id)) throw row.error(`query id ${JSON.stringify(id)} appears twice; expected unique ids`);
      queryIndex.set(id, queries.length);
      queries.push({ id, text: row.text(q.text), source: row.source });
    });
    const relevant = new Map<number, Set<number>>();
    const r = o.qrels_columns;
    await forEachRecord(ctx, { path: files.qrels, format: o.format, key: 'retrieval.qrels' }, [r.query, r.doc, r.score], (row) => {
      const queryId = row.text(r.query);
      const docId = row.text(r.doc);
      const score = row.number(r.score, { min: -Infinity, max: Infinity });
      const qi = queryIndex.get(queryId);
      if (qi === undefined) throw row.error(`query id ${JSON.stringify(queryId)} is not in the queries file`);
      const di = index.get(docId);
      if (di === undefined) throw row.error(`document id ${JSON.stringify(docId)} is not in the corpus`);
      if (score < o.min_score) return;
      let set = relevant.get(qi);
      if (set === undefined) relevant.set(qi, (set = new Set()));
      set.add(di);
    });
    // BEIR evaluates only queries with at least one relevant document.
    const judged = queries.flatMap((query, qi) => {
      const docs = relevant.get(qi);
      return docs === undefined ? [] : [{ ...query, relevant: [...docs].sort((a, b) => a - b) }];
    });
    return {
      name: o.name,
      queryType: o.query_type,
      docType: o.doc_type,
      queries: judged,
      corpus,
      labelledPairs: makeLabelledPairs(judged, corpus.length, ctx.seed, o.name),
    } satisfies RetrievalSplit;
  },
});
