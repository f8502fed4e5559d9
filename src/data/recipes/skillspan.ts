/**
 * Recipe `skillspan` (texts): SkillSpan (Zhang et al. 2022, "SkillSpan: Hard and Soft Skill
 * Extraction from English Job Postings", NAACL; MIT; https://github.com/kris927b/SkillSpan):
 * de-identified job-posting sentences with token-level BIO tags for skill and knowledge spans.
 * Reads json/{train,dev,test}.json (JSON Lines: {idx, tokens, tags_skill, tags_knowledge,
 * source}); each record becomes a sentence (tokens joined by single spaces) with its spans in
 * token and character offsets. An 'I' tag with no open span starts one (conlleval's rule).
 * train: 4,800 sentences (tech 3,133 / house 1,667); dev: 3,174 (2,156 / 1,018); test is
 * withheld from the shared data root.
 */
import { z } from 'zod';

import { handleRow, readJsonLines, requireFiles } from '../files.js';
import { DataError, type SpanExample, type TextSpan } from '../types.js';
import { defineRecipe } from './recipe.js';

const TAGS = new Set(['B', 'I', 'O']);

/** Spans from one BIO tag sequence, with character offsets into `tokens.join(' ')`. */
export function bioSpans(tokens: readonly string[], tags: readonly string[], kind: TextSpan['kind'], text: string): TextSpan[] {
  const starts: number[] = [];
  let pos = 0;
  for (const t of tokens) {
    starts.push(pos);
    pos += t.length + 1;
  }
  const spans: TextSpan[] = [];
  let open = -1;
  const close = (end: number): void => {
    if (open < 0) return;
    const start = starts[open] as number;
    const last = end - 1;
    const charEnd = (starts[last] as number) + (tokens[last] as string).length;
    spans.push({ kind, startToken: open, endToken: end, start, end: charEnd, text: text.slice(start, charEnd) });
    open = -1;
  };
  tags.forEach((tag, i) => {
    if (tag === 'B') {
      close(i);
      open = i;
    } else if (tag === 'I') {
      if (open < 0) open = i;
    } else {
      close(i);
    }
  });
  close(tags.length);
  return spans;
}

function stringArray(value: unknown, key: string, file: string, line: number): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new DataError(file, line, `"${key}" is ${value === undefined ? 'missing' : 'not an array of strings'}; expected an array of strings`);
  }
  return value as string[];
}

export const skillspan = defineRecipe({
  name: 'skillspan',
  kind: 'texts',
  description: 'SkillSpan job-posting sentences with skill and knowledge spans',
  options: z.strictObject({
    split: z.enum(['train', 'dev', 'test']).default('train').describe('json/<split>.json; test is withheld from the shared data root'),
    subset: z.enum(['tech', 'house', 'all']).default('all').describe("postings' source: tech (StackOverflow jobs), house (a job platform) or both"),
  }),
  run: async (ctx, o) => {
    const rel = `skillspan/json/${o.split}.json`;
    requireFiles(ctx, 'skillspan', [rel]);
    const out: SpanExample[] = [];
    for await (const item of readJsonLines(ctx.dataRoot, rel)) {
      handleRow(ctx, () => {
        if (item instanceof DataError) throw item;
        const { file, relFile, line, value } = item;
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DataError(file, line, 'expected a JSON object');
        const record = value as Record<string, unknown>;
        const tokens = stringArray(record.tokens, 'tokens', file, line);
        if (tokens.length === 0) throw new DataError(file, line, '"tokens" is empty; expected at least one token');
        const source = record.source;
        if (source !== 'tech' && source !== 'house') throw new DataError(file, line, `"source" is ${JSON.stringify(source)}; expected "tech" or "house"`);
        const text = tokens.join(' ');
        const spans: TextSpan[] = [];
        for (const [key, kind] of [['tags_skill', 'skill'], ['tags_knowledge', 'knowledge']] as const) {
          const tags = stringArray(record[key], key, file, line);
          if (tags.length !== tokens.length) throw new DataError(file, line, `"${key}" has ${tags.length} tags for ${tokens.length} tokens; expected one tag per token`);
          const badTag = tags.find((t) => !TAGS.has(t));
          if (badTag !== undefined) throw new DataError(file, line, `"${key}" has tag ${JSON.stringify(badTag)}; expected B, I or O`);
          spans.push(...bioSpans(tokens, tags, kind, text));
        }
        if (o.subset !== 'all' && source !== o.subset) return;
        spans.sort((a, b) => a.startToken - b.startToken || a.endToken - b.endToken);
        out.push({ text, tokens, spans, subset: source, source: `${relFile}:${line}` });
      });
    }
    return out;
  },
});
