/**
 * SkillSpan postings rebuilt from sentence lines, and the weak labels the trie makes from
 * SkillSpan train sentences (recipe skillspan-weak), on the real data.
 */
import { describe, expect, it } from 'vitest';

import { createContext } from '../../src/data/files.js';
import { loadRecipe } from '../../src/data/recipes/index.js';
import type { PairExample } from '../../src/data/types.js';
import { readSkillspanPostings } from '../../src/skills/postings.js';
import { DATA_ROOT, tempRoot } from '../data/root.js';

describe('SkillSpan postings', () => {
  it('groups consecutive sentences of one (source, idx) into a posting, one line per sentence', async () => {
    const postings = await readSkillspanPostings(createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' }), 'dev');
    expect(postings).toHaveLength(58);
    expect(new Set(postings.map((p) => p.id)).size).toBe(58);
    const first = postings[0]!;
    expect(first).toMatchObject({ id: 'tech:1', source: 'tech', origin: 'skillspan/json/dev.json:1' });
    expect(first.text.split('\n').slice(0, 3)).toEqual(['DevOps Engineer ( CI CD Cloud Docker Jenkins ) <ORGANIZATION>', '<ADDRESS> <ADDRESS> <LOCATION> - <LOCATION>', 'Date posted: 2021-04-22']);
    // Every dev sentence is in exactly one posting.
    expect(postings.reduce((n, p) => n + p.text.split('\n').length, 0)).toBe(3174);
  });

  it('names the line of a malformed record', async () => {
    const root = tempRoot({ 'skillspan/json/dev.json': '{"idx": 1, "tokens": ["a"], "source": "tech"}\n{"idx": "x", "tokens": ["b"], "source": "tech"}\n' });
    await expect(readSkillspanPostings(createContext({ dataRoot: root, onBadRow: 'fail' }), 'dev')).rejects.toThrow(/dev\.json:2: "idx" is "x"; expected the posting's integer number/);
  });
});

describe('recipe skillspan-weak', () => {
  it('pairs SkillSpan train sentences with the ESCO skills the trie finds in them', async () => {
    const loaded = await loadRecipe('skillspan-weak', createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' }), {});
    const pairs = loaded.data as PairExample[];
    expect(pairs.length).toBeGreaterThan(1500);
    expect(pairs.every((p) => p.queryType === 'sentence' && p.docType === 'skill' && p.group.startsWith('http://data.europa.eu/esco/skill/'))).toBe(true);
    // One pair per (sentence line, skill): a sentence repeated in two postings gives two.
    expect(new Set(pairs.map((p) => `${p.source}\0${p.group}`)).size).toBe(pairs.length);
    const python = pairs.find((p) => /\bPython\b/.test(p.query) && p.doc === 'Python (computer programming)');
    expect(python?.source).toMatch(/^skillspan\/json\/train\.json:\d+$/);
    // Stack Overflow synonyms only: "JS" and the like → JavaScript.
    const onlySo = (await loadRecipe('skillspan-weak', createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' }), { sources: ['stackoverflow'] })).data as PairExample[];
    expect(onlySo.length).toBeGreaterThan(0);
    expect(onlySo.length).toBeLessThan(pairs.length / 5);
  });
});
