/**
 * Lexical rankers over taxonomy documents (src/eval/lexical.ts): which strings a document is
 * (fields), best-label against joined scoring, checked against BM25 and character TF-IDF run
 * directly on the same strings, and the candidate lists fusion consumes.
 */
import { describe, expect, it } from 'vitest';

import { Bm25Index } from '../../src/eval/bm25.js';
import { CharTfidfIndex } from '../../src/eval/tfidf-char.js';
import { documentStrings, LexicalRanker, positiveTop } from '../../src/eval/lexical.js';
import type { CorpusDocument } from '../../src/data/types.js';

const DOCS: CorpusDocument[] = [
  { id: 'a', text: 'software developer', labels: ['application developer', 'programmer', 'software developer'] },
  { id: 'b', text: 'data scientist', labels: ['data analyst', 'machine learning engineer'] },
  { id: 'c', text: 'nurse', labels: [] },
  { id: 'd', text: 'web developer' },
];
const QUERIES = ['senior programmer', 'machine learning', 'registered nurse', 'developer', 'astronaut'];

describe('documentStrings', () => {
  it('takes the chosen fields in order and drops repeats and blanks', () => {
    expect(documentStrings(DOCS[0]!, ['text', 'labels'])).toEqual(['software developer', 'application developer', 'programmer']);
    expect(documentStrings(DOCS[0]!, ['labels'])).toEqual(['application developer', 'programmer', 'software developer']);
    expect(documentStrings(DOCS[3]!, ['text', 'labels'])).toEqual(['web developer']);
    expect(documentStrings({ id: 'x', text: ' ', labels: ['', 'y'] }, ['text', 'labels'])).toEqual(['y']);
  });
});

describe('LexicalRanker', () => {
  for (const name of ['bm25', 'tfidf_char'] as const) {
    const direct = (texts: string[]): { scores(q: string): Float32Array } => (name === 'bm25' ? new Bm25Index(texts) : new CharTfidfIndex(texts));

    it(`${name}, best label: a document scores the maximum over its labels of the ranker fitted on all labels`, () => {
      const units = DOCS.map((d) => documentStrings(d, ['text', 'labels']));
      const reference = direct(units.flat());
      const ranker = new LexicalRanker(name, DOCS, { fields: ['text', 'labels'], match: 'best' });
      expect(ranker.units).toBe(units.flat().length);
      for (const q of QUERIES) {
        const unitScores = reference.scores(q);
        let u = 0;
        const expected = units.map((labels) => Math.max(0, ...labels.map(() => unitScores[u++]!)));
        expect(Array.from(ranker.scores(q)), q).toEqual(expected);
      }
    });

    it(`${name}, joined: a document scores as its labels joined into one text`, () => {
      const reference = direct(DOCS.map((d) => documentStrings(d, ['text', 'labels']).join('; ')));
      const ranker = new LexicalRanker(name, DOCS, { fields: ['text', 'labels'], match: 'joined' });
      for (const q of QUERIES) expect(Array.from(ranker.scores(q)), q).toEqual(Array.from(reference.scores(q)));
    });
  }

  it('fields: text alone does not see the alternative labels', () => {
    const textOnly = new LexicalRanker('bm25', DOCS, { fields: ['text'], match: 'best' });
    const withLabels = new LexicalRanker('bm25', DOCS, { fields: ['text', 'labels'], match: 'best' });
    expect(textOnly.scores('programmer')[0]).toBe(0);
    expect(withLabels.scores('programmer')[0]).toBeGreaterThan(0);
  });

  it('candidates: only documents with a positive score, best first, at most the window', () => {
    const ranker = new LexicalRanker('bm25', DOCS);
    const scores = ranker.scores('developer');
    const candidates = ranker.candidates('developer', 10);
    // Docs a and d match "developer"; b and c do not.
    expect(Array.from(candidates.docs).sort()).toEqual([0, 3]);
    expect(Array.from(candidates.scores)).toEqual(Array.from(candidates.docs, (d) => scores[d]!));
    expect(candidates.scores[0]!).toBeGreaterThanOrEqual(candidates.scores[1]!);
    expect(ranker.candidates('developer', 1).docs).toHaveLength(1);
    expect(ranker.candidates('astronaut', 10).docs).toHaveLength(0);
  });

  it('positiveTop breaks ties by the lower index', () => {
    const top = positiveTop(Float32Array.from([0, 2, 1, 2, 0]), 5);
    expect(Array.from(top.docs)).toEqual([1, 3, 2]);
  });

  it('rejects an unknown ranker and an empty field list', () => {
    expect(() => new LexicalRanker('tfidf' as never, DOCS)).toThrow(/unknown lexical ranker 'tfidf'; expected one of bm25, tfidf_char/);
    expect(() => new LexicalRanker('bm25', DOCS, { fields: [], match: 'best' })).toThrow(/at least one of text, labels/);
  });
});

describe('sparse BM25 candidates', () => {
  it("are exactly the full score row's positive top, on ESCO skills and SkillSpan sentences", async () => {
    const { createContext } = await import('../../src/data/files.js');
    const { loadEscoConcepts } = await import('../../src/data/esco.js');
    const { loadRecipe } = await import('../../src/data/recipes/index.js');
    const { DATA_ROOT } = await import('../data/root.js');
    const ctx = createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' });
    const skills = await loadEscoConcepts(ctx, 'skills');
    const docs: CorpusDocument[] = skills.map((s) => ({ id: s.uri, text: s.preferredLabel, labels: s.altLabels }));
    const sentences = ((await loadRecipe('skillspan', ctx, { split: 'dev' })).data as Array<{ text: string }>).slice(0, 150).map((s) => s.text);
    for (const match of ['best', 'joined'] as const) {
      const ranker = new LexicalRanker('bm25', docs, { fields: ['text', 'labels'], match });
      for (const query of [...sentences, 'astronaut xyz', '', 'project management project management']) {
        // The full row, then the positive top of it: the path without the sparse scorer.
        const expected = positiveTop(ranker.scores(query), 100);
        const got = ranker.candidates(query, 100);
        expect(Array.from(got.docs), query).toEqual(Array.from(expected.docs));
        expect(Array.from(got.scores)).toEqual(Array.from(expected.scores));
      }
    }
  }, 60_000);
});
