/**
 * SkillSpan job postings (Zhang et al. 2022, NAACL; MIT) rebuilt from the dataset's sentence
 * lines: json/<split>.json has one sentence per line with the posting's number (`idx`) and
 * source (tech: Stack Overflow jobs; house: a job platform); consecutive lines of one (source,
 * idx) are one posting. A sentence's text is its tokens joined by spaces (as the `skillspan`
 * recipe makes it), and the sentences are joined by newlines, so headings stay on their own line
 * for the section segmenter.
 */
import { handleRow, readJsonLines, requireFiles } from '../data/files.js';
import { DataError, type RecipeContext } from '../data/types.js';

export interface Posting {
  /** `<source>:<idx>`, e.g. tech:12. */
  id: string;
  source: 'tech' | 'house';
  /** 'skillspan/json/dev.json:LINE' of the posting's first sentence. */
  origin: string;
  text: string;
}

export async function readSkillspanPostings(ctx: RecipeContext, split: 'train' | 'dev'): Promise<Posting[]> {
  const rel = `skillspan/json/${split}.json`;
  requireFiles(ctx, 'skillspan', [rel]);
  const postings: Posting[] = [];
  let current: { key: string; source: 'tech' | 'house'; idx: number; origin: string; lines: string[] } | null = null;
  const flush = (): void => {
    if (current !== null) postings.push({ id: `${current.source}:${current.idx}`, source: current.source, origin: current.origin, text: current.lines.join('\n') });
  };
  for await (const item of readJsonLines(ctx.dataRoot, rel)) {
    handleRow(ctx, () => {
      if (item instanceof DataError) throw item;
      const record = item.value as { idx?: unknown; tokens?: unknown; source?: unknown } | null;
      if (record === null || typeof record !== 'object') throw new DataError(item.file, item.line, 'expected a JSON object');
      const { idx, tokens, source } = record;
      if (!Number.isInteger(idx)) throw new DataError(item.file, item.line, `"idx" is ${JSON.stringify(idx)}; expected the posting's integer number`);
      if (source !== 'tech' && source !== 'house') throw new DataError(item.file, item.line, `"source" is ${JSON.stringify(source)}; expected "tech" or "house"`);
      if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw new DataError(item.file, item.line, '"tokens" is not an array of strings');
      const key = `${source}:${String(idx)}`;
      if (current === null || current.key !== key) {
        flush();
        current = { key, source, idx: idx as number, origin: `${item.relFile}:${item.line}`, lines: [] };
      }
      current.lines.push((tokens as string[]).join(' '));
    });
  }
  flush();
  return postings;
}
