/**
 * The `domain-corpus` recipe (MLM pretraining text) on the real data root: it is large, every
 * text comes from an allowed training file, it contains no evaluation query (checked against
 * the evaluation recipes' own queries, loaded independently), and the decontamination filter
 * really removes something: SkillSpan train holds TECH/HOUSE validation sentences verbatim.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { createContext } from '../../src/data/files.js';
import { DOMAIN_CORPUS_SOURCES, hasContent, loadDomainCorpus, loadEvaluationQueryTexts, type DomainCorpusStats } from '../../src/data/recipes/domain-corpus.js';
import { RECIPES, loadRecipe } from '../../src/data/recipes/index.js';
import { normalizeForOverlap } from '../../src/data/recipes/recipe.js';
import { skillExtractionFile } from '../../src/data/recipes/skill-extraction.js';
import type { TextExample } from '../../src/data/types.js';
import { DATA_ROOT, tempRoot } from './root.js';

const ctx = (onBadRow: 'fail' | 'skip' = 'fail') => createContext({ dataRoot: DATA_ROOT, onBadRow });

/** The only files corpus text may come from. */
const ALLOWED_FILES = new Set([
  'esco-v1.1.1/skills_en.csv',
  'esco-v1.1.1/occupations_en.csv',
  'onet-29.2/Occupation Data.txt',
  'onet-29.2/Task Statements.txt',
  'onet-29.2/DWA Reference.txt',
  'onet-29.2/Alternate Titles.txt',
  'skillspan/json/train.json',
]);

/** Every evaluation query, as the evaluation recipes load them (each split that is on disk). */
async function evaluationQueries(): Promise<Map<string, string>> {
  const queries = new Map<string, string>(); // normalised text → split name
  const sets: { subset: 'tech' | 'house' | 'techwolf'; split: 'validation' | 'test' }[] = [
    { subset: 'tech', split: 'validation' },
    { subset: 'house', split: 'validation' },
    { subset: 'tech', split: 'test' },
    { subset: 'house', split: 'test' },
    { subset: 'techwolf', split: 'test' },
  ];
  for (const s of sets) {
    if (!existsSync(join(DATA_ROOT, skillExtractionFile(s.subset, s.split)))) continue;
    const split = await RECIPES['skill-extraction'].load(ctx(), s);
    for (const q of split.queries) queries.set(normalizeForOverlap(q.text), split.name);
  }
  for (const split of ['validation', 'test'] as const) {
    if (!existsSync(join(DATA_ROOT, split === 'validation' ? 'jobbert-titles/titles.csv' : 'jobbert-titles/titles.test.csv'))) continue;
    // titles.csv has one row whose URI is not in ESCO v1.1.1: skip it, as evaluation does
    const loaded = await RECIPES['jobbert-titles'].load(ctx('skip'), { split });
    for (const q of loaded.queries) queries.set(normalizeForOverlap(q.text), loaded.name);
  }
  return queries;
}

let texts: TextExample[];
let stats: DomainCorpusStats;
let queries: Map<string, string>;

beforeAll(async () => {
  ({ texts, stats } = await loadDomainCorpus(ctx()));
  queries = await evaluationQueries();
}, 60_000);

describe('domain-corpus', () => {
  it('is a sizeable corpus from every source', () => {
    const line = DOMAIN_CORPUS_SOURCES.map((s) => `${s} ${stats.sources[s]?.kept}`).join(', ');
    console.log(`domain-corpus: ${texts.length} texts (${line}); ${stats.droppedAsEvaluation} dropped as evaluation queries`);
    expect(texts.length).toBeGreaterThan(200_000);
    expect(stats.texts).toBe(texts.length);
    expect(Object.keys(stats.sources)).toEqual([...DOMAIN_CORPUS_SOURCES]);
    let kept = 0;
    for (const s of DOMAIN_CORPUS_SOURCES) {
      const c = stats.sources[s];
      expect(c, s).toBeDefined();
      if (c === undefined) continue;
      expect(c.kept, s).toBeGreaterThan(1000);
      expect(c.read).toBe(c.kept + c.empty + c.short + c.evaluation + c.duplicate);
      kept += c.kept;
    }
    expect(kept).toBe(texts.length);
    // ESCO labels, descriptions and definitions; O*NET tasks and DWAs; SkillSpan sentences
    const has = (text: string, file: string): boolean => texts.some((t) => t.text === text && t.source.startsWith(`${file}:`));
    expect(has('manage musical staff', 'esco-v1.1.1/skills_en.csv')).toBe(true);
    expect(has('coordinate duties of musical staff', 'esco-v1.1.1/skills_en.csv')).toBe(true);
    expect(has('Excludes choreologist.', 'esco-v1.1.1/occupations_en.csv')).toBe(true);
    expect(has('Review art or design materials.', 'onet-29.2/DWA Reference.txt')).toBe(true);
    expect(texts.find((t) => t.source === 'onet-29.2/Task Statements.txt:2')?.text).toBe(
      "Direct or coordinate an organization's financial or budget activities to fund operations, maximize investments, or increase efficiency.",
    );
  });

  it('reads only training files: every source is an allowed file and a data line', () => {
    const bad = texts.filter((t) => {
      const m = /^(.*):(\d+)$/.exec(t.source);
      return m === null || !ALLOWED_FILES.has(m[1] as string) || Number(m[2]) < 1;
    });
    expect(bad.slice(0, 5)).toEqual([]);
    expect(texts.some((t) => t.source.includes('dev.json') || t.source.includes('test') || t.source.includes('jobbert') || t.source.includes('skill-extraction'))).toBe(false);
  });

  it('contains no evaluation query (skill-extraction validation/test, JobBERT titles), normalised', () => {
    expect(queries.size).toBeGreaterThan(14_000);
    const leaks = texts.filter((t) => queries.has(normalizeForOverlap(t.text)));
    expect(leaks.slice(0, 5)).toEqual([]);
    expect(stats.evaluationFiles).toContain('skill-extraction-benchmark/data/tech_validation_annotations.csv');
    expect(stats.evaluationFiles).toContain('jobbert-titles/titles.csv');
  });

  it('the filter does something: SkillSpan train sentences that are TECH/HOUSE queries existed and were dropped', async () => {
    const train = await RECIPES.skillspan.load(ctx(), { split: 'train' });
    const overlapping = train.filter((s) => queries.get(normalizeForOverlap(s.text))?.startsWith('skill-extraction/') === true);
    console.log(`domain-corpus: ${overlapping.length} SkillSpan train sentences are skill-extraction queries, e.g. "${overlapping[0]?.text}"`);
    expect(overlapping.length).toBeGreaterThan(0);
    const corpusTexts = new Set(texts.map((t) => t.text));
    for (const s of overlapping) expect(corpusTexts.has(s.text), s.text).toBe(false);
    expect(stats.sources.skillspan_train?.evaluation).toBeGreaterThanOrEqual(overlapping.length);
    expect(stats.droppedAsEvaluation).toBeGreaterThan(overlapping.length);
    // the held-out set: every row of the evaluation files, a superset of the recipes' queries
    const held = await loadEvaluationQueryTexts(ctx());
    expect(held.texts.size).toBe(stats.evaluationQueries);
    expect([...queries.keys()].filter((q) => !held.texts.has(q))).toEqual([]);
    expect(stats.droppedExamples.length).toBe(20);
    expect(stats.droppedExamples.filter((e) => !held.texts.has(normalizeForOverlap(e.text)))).toEqual([]);
  });

  it('is de-duplicated, cleaned, non-empty and deterministic; the recipe returns the same texts', async () => {
    const keys = texts.map((t) => normalizeForOverlap(t.text));
    expect(new Set(keys).size).toBe(texts.length);
    expect(texts.every((t) => t.text === t.text.replace(/\s+/g, ' ').trim() && hasContent(t.text))).toBe(true);
    const again = await RECIPES['domain-corpus'].load(ctx(), {});
    expect(again).toEqual(texts);
    const loaded = await loadRecipe('domain-corpus', ctx(), { include_esco_skills: false, include_esco_occupations: false, include_onet_alternate_titles: false });
    expect(loaded.kind).toBe('corpus');
  });

  it('switches sources off, drops short texts, and keeps placeholder-only SkillSpan lines out', async () => {
    const only = await loadDomainCorpus(ctx(), {
      include_esco_skills: false,
      include_esco_occupations: false,
      include_onet_occupations: false,
      include_onet_tasks: false,
      include_onet_alternate_titles: false,
      min_chars: 40,
    });
    expect(Object.keys(only.stats.sources)).toEqual(['onet_dwas', 'skillspan_train']);
    expect(only.texts.every((t) => t.text.length >= 40)).toBe(true);
    expect(only.stats.sources.onet_dwas?.short).toBeGreaterThan(0);
    expect(only.stats.sources.skillspan_train?.empty).toBe(145);
    expect(hasContent('<ADDRESS> <ADDRESS> , <LOCATION>')).toBe(false);
    expect(hasContent('<ORGANIZATION> is hiring')).toBe(true);
  });

  it('strict options; all sources off is an error; missing files name the files and the download page', async () => {
    expect(() => RECIPES['domain-corpus'].parseOptions({ include_esco: true })).toThrow(/recipe "domain-corpus": invalid options:[\s\S]*include_esco/);
    const off = Object.fromEntries(DOMAIN_CORPUS_SOURCES.map((s) => [s === 'skillspan_train' ? 'include_skillspan' : `include_${s}`, false]));
    expect(() => RECIPES['domain-corpus'].parseOptions(off)).toThrow(/every source is switched off/);

    const root = tempRoot({}, ['esco-v1.1.1', 'onet-29.2/DWA Reference.txt']);
    const error = await RECIPES['domain-corpus'].load(createContext({ dataRoot: root }), {}).catch((e: unknown) => e);
    expect(String(error)).toMatch(/missing data files for O\*NET 29\.2[\s\S]*Occupation Data\.txt[\s\S]*Task Statements\.txt[\s\S]*Alternate Titles\.txt[\s\S]*onetcenter\.org/);
    expect(String(error)).not.toMatch(/DWA Reference/);

    // without evaluation files on disk nothing is held out, and the stats say so
    const dwa = await loadDomainCorpus(createContext({ dataRoot: root }), { ...off, include_onet_dwas: true });
    expect(dwa.stats.evaluationFiles).toEqual([]);
    // all 2,087 DWA titles are distinct; in the full corpus 7 of them repeat an earlier source's text
    expect(dwa.texts.length).toBe(2087);
    expect(stats.sources.onet_dwas).toMatchObject({ read: 2087, duplicate: 7 });
  });
});
