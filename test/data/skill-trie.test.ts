/**
 * The taxonomy trie tagger: normalisation (case, punctuation, plurals, -ing/-ed), leftmost-longest
 * matching with character offsets, the ambiguity rules for one-word labels, the saved form, and
 * the real ESCO + Stack Overflow trie on sentences whose skills are known.
 */
import { describe, expect, it } from 'vitest';

import { buildTaxonomyTrie, labelKey } from '../../src/data/skill-labels.js';
import { normaliseTokens, normaliseWord, pluralForm, SkillTrie, type TrieLabel } from '../../src/data/skill-trie.js';
import { createContext } from '../../src/data/files.js';
import { DATA_ROOT } from './root.js';

const labels = (entries: Array<[string, number, TrieLabel['source']?]>): TrieLabel[] => entries.map(([text, skill, source]) => ({ text, skills: [skill], source: source ?? 'preferred' }));

describe('normalisation', () => {
  it('folds plurals by the S-stemmer and verb endings alike on both sides', () => {
    expect(['skills', 'databases', 'abilities', 'analyses', 'status', 'class'].map(pluralForm)).toEqual(['skill', 'database', 'ability', 'analyse', 'status', 'class']);
    expect(['manage', 'managing', 'manages', 'managed'].map(normaliseWord)).toEqual(['manag', 'manag', 'manag', 'manag']);
    expect(['plan', 'planning', 'planned'].map(normaliseWord)).toEqual(['plan', 'plan', 'plan']);
    // Short words and technology names are left alone.
    expect(['aws', 'ios', 'C++', 'C#', '.NET', 'Node.js', "driver's"].map(normaliseWord)).toEqual(['aws', 'ios', 'c++', 'c#', '.net', 'node.js', 'driver']);
  });

  it('splits on hyphens and punctuation and keeps exact character offsets', () => {
    const text = 'Problem-solving (C++, .NET)!';
    const tokens = normaliseTokens(text);
    expect(tokens.map((t) => t.token)).toEqual(['problem', 'solv', 'c++', '.net']);
    expect(tokens.map((t) => text.slice(t.start, t.end))).toEqual(['Problem', 'solving', 'C++', '.NET']);
    expect(tokens.map((t) => t.upper)).toEqual([false, false, true, true]);
    expect(tokens.map((t) => t.breakBefore)).toEqual([false, false, true, true]);
  });
});

describe('SkillTrie', () => {
  const trie = SkillTrie.build(
    labels([
      ['machine learning', 0],
      ['machine learning engineering', 1],
      ['manage a team', 2],
      ['Python', 3],
      ['R', 4],
      ['design', 5, 'alt'],
      ['go', 6],
      ['accounting', 7],
      ['spreadsheets', 8],
    ]),
    { maxSynonymWordLabels: 40 },
  );

  it('takes the longest label at each position, left to right, with offsets', () => {
    const text = 'Machine Learning Engineering and machine learning; managing a team in python.';
    const matches = trie.match(text);
    expect(matches.map((m) => [m.surface, m.label, m.skills, m.tokens])).toEqual([
      ['Machine Learning Engineering', 'machine learning engineering', [1], 3],
      ['machine learning', 'machine learning', [0], 2],
      ['managing a team', 'manage a team', [2], 3],
      ['python', 'Python', [3], 1],
    ]);
    for (const m of matches) expect(text.slice(m.start, m.end)).toBe(m.surface);
  });

  it('wants short labels in upper case, and skips one-word stop labels', () => {
    expect(trie.match('R and Go').map((m) => m.label)).toEqual(['R']);
    expect(trie.match('machine, learning; manage: a team').map((m) => m.label)).toEqual([]);
    expect(trie.match('for r users, go')).toEqual([]);
  });

  it('matches a lone word on its plural form only', () => {
    expect(trie.match('Spreadsheet accounting').map((m) => m.label)).toEqual(['spreadsheets', 'accounting']);
    // "account" is "accounting" stripped of -ing: a different word on its own.
    expect(trie.match('your account')).toEqual([]);
  });

  it('drops one-word synonyms whose word is a theme of many labels', () => {
    const many = labels(Array.from({ length: 5 }, (_, i): [string, number] => [`design item ${i}`, 10 + i]));
    const strict = SkillTrie.build([...many, ...labels([['design', 5, 'alt']])], { maxSynonymWordLabels: 3 });
    expect(strict.match('design').map((m) => m.label)).toEqual([]);
    const loose = SkillTrie.build([...many, ...labels([['design', 5, 'alt']])], { maxSynonymWordLabels: 10 });
    expect(loose.match('design').map((m) => m.skills)).toEqual([[5]]);
    // A preferred label is the concept's own name and is kept whatever its word's frequency.
    const preferred = SkillTrie.build([...many, ...labels([['design', 5, 'preferred']])], { maxSynonymWordLabels: 3 });
    expect(preferred.match('design').map((m) => m.skills)).toEqual([[5]]);
  });

  it('merges labels with one normal form, keeping the first spelling', () => {
    const merged = SkillTrie.build(labels([['Data Bases', 1], ['data base', 2, 'alt']]));
    expect(merged.size).toBe(1);
    expect(merged.match('data-base')).toMatchObject([{ label: 'Data Bases', skills: [1, 2], source: 'preferred' }]);
  });

  it('round-trips through its saved form and rejects a damaged one', () => {
    const text = 'Machine learning engineering, R, accounting and managing a team';
    const again = SkillTrie.fromJSON(JSON.parse(JSON.stringify(trie.toJSON())), 'trie.json');
    expect(again.match(text)).toEqual(trie.match(text));
    const bad = { ...trie.toJSON(), edgeChildren: [99999] };
    expect(() => SkillTrie.fromJSON(bad, 'skills/trie.json')).toThrow(/skills\/trie\.json: the node arrays disagree in length; expected a skill trie/);
    expect(() => SkillTrie.fromJSON({ format: 'other' }, 'x.json')).toThrow(/x\.json: format "other"/);
  });
});

describe('the ESCO and Stack Overflow trie', () => {
  it('tags known skills in job-ad sentences, through ESCO labels and Stack Overflow synonyms', async () => {
    const { trie, skills } = await buildTaxonomyTrie(createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' }));
    expect(skills).toHaveLength(13_896);
    const tag = (text: string): string[][] => trie.match(text).map((m) => m.skills.map((s) => skills[s]!.preferredLabel));
    expect(tag('Experience with JS and Kubernetes; strong C# and SQL databases.')).toEqual([['JavaScript'], ['C#'], ['SQL', 'database management systems'], ['database']]);
    expect(trie.match('Experience with JS')[0]).toMatchObject({ surface: 'JS', source: 'stackoverflow' });
    expect(tag('You will be managing a team and use spreadsheets software')).toEqual([['manage a team'], ['use spreadsheets software']]);
    // "design", "data" and "security" are themes of hundreds of labels, not skills on their own.
    expect(tag('design, data, security')).toEqual([['securities']]);
    // Without the commas, "data security" is one label (an alternative label of this skill).
    expect(tag('design data security')).toEqual([['apply information security policies']]);
    expect(labelKey('Managing Teams')).toBe('manag team');
  });
});
