/**
 * Every recipe against the real public data (the data root: KILN_DATA or ../shared/datasets),
 * with the row counts stated in SOURCES.md and recomputed independently with Python's csv
 * module: ESCO 3,007 occupations / 13,896 skills, O*NET 1,016 occupations, JobBERT 15,463
 * titles of which 15,462 resolve in ESCO v1.1.1, skill-extraction validation TECH 101 → 75 and
 * HOUSE 77 → 61 sentences after the published protocol, SkillSpan train 4,800 / dev 3,174,
 * STS-B train 5,749 / dev 1,500.
 */
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadEscoConcepts } from '../../src/data/esco.js';
import { createContext, readCsv } from '../../src/data/files.js';
import { RECIPES, getRecipe, loadRecipe } from '../../src/data/recipes/index.js';
import { NON_SKILL_LABELS, applyProtocol, skillExtractionFile } from '../../src/data/recipes/skill-extraction.js';
import { bioSpans } from '../../src/data/recipes/skillspan.js';
import { DataError, type RetrievalSplit } from '../../src/data/types.js';
import { DATA_ROOT } from './root.js';

const ctx = (onBadRow: 'fail' | 'skip' = 'fail', seed = 0) => createContext({ dataRoot: DATA_ROOT, onBadRow, seed });

function checkSplit(split: RetrievalSplit): void {
  for (const q of split.queries) {
    expect(q.relevant.length).toBeGreaterThan(0);
    for (const r of q.relevant) expect(r >= 0 && r < split.corpus.length).toBe(true);
  }
  const pos = split.labelledPairs.filter((p) => p.label === 1).length;
  const neg = split.labelledPairs.length - pos;
  expect(pos).toBe(split.queries.reduce((n, q) => n + q.relevant.length, 0));
  expect(neg).toBe(pos);
  for (const p of split.labelledPairs) {
    const relevant = split.queries[p.query]?.relevant ?? [];
    expect(relevant.includes(p.doc)).toBe(p.label === 1);
  }
}

describe('ESCO', () => {
  it('3,007 occupations and 13,896 skills, every concept with a URI and label', async () => {
    const occupations = await loadEscoConcepts(ctx(), 'occupations');
    const skills = await loadEscoConcepts(ctx(), 'skills');
    expect(occupations.length).toBe(3007);
    expect(skills.length).toBe(13896);
    expect(new Set(skills.map((s) => s.preferredLabel)).size).toBe(13896);
    expect(occupations[0]).toMatchObject({ preferredLabel: 'technical director', source: 'esco-v1.1.1/occupations_en.csv:2' });
    expect(occupations[0]?.altLabels).toContain('head of technical department');
  });

  it('esco-occupations: 30,068 title pairs + 3,007 descriptions (+86 hidden labels)', async () => {
    const pairs = await RECIPES['esco-occupations'].load(ctx(), {});
    expect(pairs.length).toBe(33075);
    expect(pairs.filter((p) => p.queryType === 'title').length).toBe(30068);
    expect(pairs.filter((p) => p.queryType === 'description').length).toBe(3007);
    expect(new Set(pairs.map((p) => p.group)).size).toBe(3007);
    expect(pairs.every((p) => p.docType === 'occupation' && p.query.toLowerCase() !== p.doc.toLowerCase())).toBe(true);
    expect(pairs[0]).toEqual({
      query: 'technical and operations director',
      doc: 'technical director',
      group: 'http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34',
      queryType: 'title',
      docType: 'occupation',
      source: 'esco-v1.1.1/occupations_en.csv:2',
    });
    expect((await RECIPES['esco-occupations'].load(ctx(), { include_hidden: true, include_description: false })).length).toBe(30068 + 86);
  });

  it('esco-skills: 85,178 skill pairs + 13,896 descriptions typed "sentence"', async () => {
    const pairs = await RECIPES['esco-skills'].load(ctx(), {});
    expect(pairs.length).toBe(99074);
    expect(pairs.filter((p) => p.queryType === 'skill').length).toBe(85178);
    expect(pairs.filter((p) => p.queryType === 'sentence').length).toBe(13896);
    const typed = await RECIPES['esco-skills'].load(ctx(), { description_query_type: 'description' });
    expect(typed.filter((p) => p.queryType === 'description').length).toBe(13896);
  });
});

describe('O*NET', () => {
  it('onet-titles: 56,555 distinct alternate titles (of 56,560 rows) over 1,016 occupations; tasks add 18,796', async () => {
    const pairs = await RECIPES['onet-titles'].load(ctx(), {});
    expect(pairs.length).toBe(56555);
    expect(pairs[0]).toEqual({ query: 'Aeronautics Commission Director', doc: 'Chief Executives', group: 'onet:11-1011.00', queryType: 'title', docType: 'occupation', source: 'onet-29.2/Alternate Titles.txt:2' });
    const withTasks = await RECIPES['onet-titles'].load(ctx(), { include_tasks: true });
    expect(withTasks.length).toBe(56555 + 18796);
    expect(withTasks.filter((p) => p.queryType === 'sentence').length).toBe(18796);
  });
});

describe('JobBERT titles', () => {
  it('15,463 rows, one URI not in ESCO v1.1.1: fail names titles.csv:15324, skip keeps 15,462 queries', async () => {
    const error = await RECIPES['jobbert-titles'].load(ctx('fail'), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).message).toBe(
      `${join(DATA_ROOT, 'jobbert-titles/titles.csv')}:15324: conceptUri http://data.europa.eu/esco/occupation/a9e54177-a185-404d-b6e6-15663d31137e is not an occupation in esco-v1.1.1/occupations_en.csv`,
    );

    const c = ctx('skip', 7);
    const split = await RECIPES['jobbert-titles'].load(c, {});
    expect(c.report.total).toBe(1);
    expect(split.queries.length).toBe(15462);
    expect(split.corpus.length).toBe(3007);
    expect(split.labelledPairs.length).toBe(2 * 15462);
    expect(split.queries[0]).toEqual({ id: '0', text: 'Internship Digital Marketer', relevant: [split.corpus.findIndex((d) => d.id.endsWith('47e81c7f-2d04-4a60-a8ff-9913c36d8344'))], source: 'jobbert-titles/titles.csv:2' });
    // SOURCES.md: the split covers 1,377 occupations; one of them is the unresolvable URI
    expect(new Set(split.queries.map((q) => q.relevant[0])).size).toBe(1376);
    checkSplit(split);

    // labelled negatives are a pure function of the seed
    const again = await RECIPES['jobbert-titles'].load(ctx('skip', 7), {});
    expect(again.labelledPairs).toEqual(split.labelledPairs);
    const other = await RECIPES['jobbert-titles'].load(ctx('skip', 8), {});
    expect(other.labelledPairs).not.toEqual(split.labelledPairs);
  });
});

describe('skill extraction (Decorte et al. 2023 protocol)', () => {
  it('validation: TECH 101 sentences → 75 queries, HOUSE 77 → 61, against all 13,896 skills', async () => {
    const tech = await RECIPES['skill-extraction'].load(ctx(), { subset: 'tech' });
    const house = await RECIPES['skill-extraction'].load(ctx(), { subset: 'house', split: 'validation' });
    expect(tech.queries.length).toBe(75);
    expect(house.queries.length).toBe(61);
    expect(tech.corpus.length).toBe(13896);
    // 131 (sentence, ESCO label) pairs in each split
    expect(tech.queries.reduce((n, q) => n + q.relevant.length, 0)).toBe(131);
    expect(house.queries.reduce((n, q) => n + q.relevant.length, 0)).toBe(131);
    expect(tech.queries[0]?.text).toBe('javascript reactjs java');
    expect(tech.queries[0]?.relevant.map((i) => tech.corpus[i]?.text).sort()).toEqual(['JavaScript', 'Java (computer programming)'].sort());
    checkSplit(tech);
    checkSplit(house);
  });

  it('drops non-ESCO labels and sentences left without labels; matching is exact', () => {
    const index = new Map([['Java (computer programming)', 0], ['JavaScript', 1]]);
    const groups = [
      { sentence: 's1', source: 'f:2', labels: ['JavaScript', 'LABEL NOT PRESENT', 'Java (computer programming)'] },
      { sentence: 's2', source: 'f:5', labels: ['UNDERSPECIFIED', 'LABEL NOT PRESENT'] },
      { sentence: 's3', source: 'f:7', labels: ['javascript'] },
    ];
    const { queries, droppedLabels, droppedSentences } = applyProtocol(groups, index, 'x-');
    expect(queries).toEqual([{ id: 'x-0', text: 's1', relevant: [0, 1], source: 'f:2' }]);
    expect(droppedSentences).toBe(2);
    expect(Object.fromEntries(droppedLabels)).toEqual({ 'LABEL NOT PRESENT': 2, UNDERSPECIFIED: 1, javascript: 1 });
  });

  it('every validation label is an exact ESCO preferredLabel or a non-skill marker (no case or spacing fix-ups needed)', async () => {
    const preferred = new Set((await loadEscoConcepts(ctx(), 'skills')).map((s) => s.preferredLabel));
    const lower = new Set([...preferred].map((l) => l.toLowerCase()));
    for (const subset of ['tech', 'house'] as const) {
      const counts = { exact: 0, marker: 0, other: 0 };
      for await (const row of readCsv(DATA_ROOT, skillExtractionFile(subset, 'validation'))) {
        const label = row.text('label');
        if (preferred.has(label)) counts.exact++;
        else if ((NON_SKILL_LABELS as readonly string[]).includes(label)) counts.marker++;
        else {
          counts.other++;
          expect(lower.has(label.toLowerCase()), `${row.source}: ${label}`).toBe(false);
        }
      }
      expect(counts.other).toBe(0);
      expect(counts).toEqual(subset === 'tech' ? { exact: 153, marker: 140, other: 0 } : { exact: 136, marker: 95, other: 0 });
    }
  });

  it('techwolf has no validation split', async () => {
    await expect(RECIPES['skill-extraction'].load(ctx(), { subset: 'techwolf' })).rejects.toThrow(/techwolf.*no validation split/);
  });
});

describe('SkillSpan', () => {
  it('train 4,800 (tech 3,133 / house 1,667), dev 3,174 sentences with spans', async () => {
    const train = await RECIPES.skillspan.load(ctx(), { split: 'train' });
    const dev = await RECIPES.skillspan.load(ctx(), { split: 'dev' });
    expect(train.length).toBe(4800);
    expect(train.filter((s) => s.subset === 'tech').length).toBe(3133);
    expect((await RECIPES.skillspan.load(ctx(), { split: 'train', subset: 'house' })).length).toBe(1667);
    expect(dev.length).toBe(3174);
    let skill = 0;
    for (const s of [...train, ...dev]) {
      expect(s.text).toBe(s.tokens.join(' '));
      for (const span of s.spans) {
        expect(span.text).toBe(s.tokens.slice(span.startToken, span.endToken).join(' '));
        if (span.kind === 'skill') skill++;
      }
    }
    expect(skill).toBeGreaterThan(1000);
  });

  it('BIO decoding: B starts, I continues, an orphan I starts a span', () => {
    const tokens = ['use', 'Python', 'and', 'manage', 'teams', 'well'];
    const text = tokens.join(' ');
    const spans = bioSpans(tokens, ['O', 'B', 'O', 'I', 'I', 'B'], 'skill', text);
    expect(spans.map((s) => [s.startToken, s.endToken, s.text, text.slice(s.start, s.end)])).toEqual([
      [1, 2, 'Python', 'Python'],
      [3, 5, 'manage teams', 'manage teams'],
      [5, 6, 'well', 'well'],
    ]);
  });
});

describe('STS-B', () => {
  it('train 5,749 / dev 1,500 pairs with scores in [0, 5]', async () => {
    const train = await RECIPES.stsb.load(ctx(), { split: 'train' });
    const dev = await RECIPES.stsb.load(ctx(), {});
    expect(train.length).toBe(5749);
    expect(dev.length).toBe(1500);
    expect(dev[0]).toEqual({ a: 'A man with a hard hat is dancing.', b: 'A man wearing a hard hat is dancing.', score: 5, source: 'stsbenchmark/sts-dev.csv:1' });
    expect(train.every((p) => p.score >= 0 && p.score <= 5)).toBe(true);
  });
});

describe('registry', () => {
  it('validates options strictly and names the recipe and key', async () => {
    expect(() => RECIPES['esco-skills'].parseOptions({ include_desc: true })).toThrow(/recipe "esco-skills": invalid options:[\s\S]*include_desc/);
    expect(() => RECIPES['skill-extraction'].parseOptions({})).toThrow(/recipe "skill-extraction": invalid options:[\s\S]*subset/);
    expect(RECIPES['esco-occupations'].parseOptions({})).toEqual({ include_description: true, include_hidden: false, description_query_type: 'description' });
    expect(() => getRecipe('esco')).toThrow(/unknown dataset recipe "esco"; known recipes: esco-occupations, esco-skills/);
    await expect(loadRecipe('stsb', ctx(), { split: 'validation' })).rejects.toThrow(/recipe "stsb": invalid options/);
    const loaded = await loadRecipe('stsb', ctx(), { split: 'dev' });
    expect(loaded.kind).toBe('scored-pairs');
  });

  it('every option is described', () => {
    for (const recipe of Object.values(RECIPES)) {
      const shape = (recipe.options as unknown as { shape: Record<string, { description?: string }> }).shape;
      for (const [key, schema] of Object.entries(shape)) expect(schema.description, `${recipe.name}.${key}`).toBeTruthy();
    }
  });
});
