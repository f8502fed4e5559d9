/**
 * The Skills Graph pipeline end to end on a tiny skills model (test/helpers/skills-fixture.ts:
 * 31 real ESCO skills, their real relations, a random tiny two-tower export): the build's
 * files, extraction with provenance (trie spans, sections, the semantic tagger's threshold and
 * top k, graph expansion), the sentence score's formula, the evaluation's rankings and
 * extraction scores on hand-made queries, and the CLI's user errors.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RetrievalSplit } from '../../src/data/types.js';
import { evaluateSkillsSplit, extractionScores, splitSignals, tuneExtraction } from '../../src/skills/evaluate.js';
import { readSkillsFiles, SKILL_SIGNALS } from '../../src/skills/model.js';
import { SkillTagger, trieRanking } from '../../src/skills/tagger.js';
import { kiln } from '../helpers/cli.js';
import { FIXTURE_EDGES, FIXTURE_SKILLS, tinySkillsModel } from '../helpers/skills-fixture.js';

let dir: string;
let tagger: SkillTagger;

beforeAll(async () => {
  ({ dir } = await tinySkillsModel());
  tagger = await SkillTagger.load(dir, { threads: 1 });
}, 120_000);

afterAll(async () => {
  await tagger?.release();
});

const labelOf = (skill: number): string => tagger.files.skills[skill]!.text;

describe('kiln skills build', () => {
  it('writes the taxonomy, trie, graph, model and index, consistent with one another', () => {
    const files = readSkillsFiles(dir);
    expect(files.skills).toHaveLength(FIXTURE_SKILLS);
    expect(files.manifest).toMatchObject({ format: 'kiln-skills-model', formatVersion: 1, taxonomy: { skills: FIXTURE_SKILLS } });
    for (const part of ['model/model.json', 'model/model.onnx', 'index/index.json', 'index/vectors.arrow', 'trie.json', 'graph.json']) expect(existsSync(join(dir, part))).toBe(true);
    expect(tagger.index.documents.map((d) => d.id)).toEqual(files.skills.map((s) => s.id));
    // The index's lexical documents carry the alternative labels ("Python3" is one of Python's).
    expect(tagger.index.documents.find((d) => d.text === FIXTURE_EDGES.python.label)!.labels).toContain('Python3');
  });

  it('names the file of a damaged directory', () => {
    const copy = join(mkdtempSync(join(tmpdir(), 'kiln-skills-bad-')), 'skills');
    cpSync(dir, copy, { recursive: true });
    writeFileSync(join(copy, 'skills.json'), '{"format": "something-else"}');
    expect(() => readSkillsFiles(copy)).toThrow(/skills\.json: format "something-else" version undefined; expected kiln-skills-model version 1/);
  });
});

describe('extraction', () => {
  const posting = ['About us', 'We are a small software company in Ghent.', 'Requirements:', '- 3 years of Python and JS', '- SQL databases'].join('\n');

  it('finds named skills with their exact spans and sections, and expands them through the graph', async () => {
    const [record] = await tagger.extract([{ id: 'p1', text: posting }], { expand: true, threshold: 1.01 });
    const found = record!.skills.filter((s) => s.kind === 'found');
    expect(found.map((s) => s.label).sort()).toEqual(['JavaScript', 'Python (computer programming)', 'SQL', 'database management systems'].sort());
    for (const skill of found) {
      for (const m of skill.mentions) {
        expect(m.tagger).toBe('trie');
        expect(m.section).toBe('qualifications');
        if (m.tagger === 'trie') expect(posting.slice(m.start, m.end)).toBe(m.text);
      }
    }
    const js = found.find((s) => s.label === 'JavaScript')!;
    expect(js.mentions[0]).toMatchObject({ text: 'JS', via: 'stackoverflow' });
    // Expanded: broader skills of the finds, at half the source's score, marked with their source.
    const expanded = record!.skills.filter((s) => s.kind === 'expanded');
    const programming = expanded.find((s) => s.label === 'computer programming')!;
    expect(programming.mentions).toEqual([]);
    expect(programming.expandedFrom!.relation).toBe('broader');
    const source = found.find((s) => s.label === programming.expandedFrom!.label)!;
    expect(programming.score).toBeCloseTo(0.5 * source.score, 12);
    expect(expanded.map((s) => s.label)).toContain(FIXTURE_EDGES.sql.broader[0]);
    // Scores never increase down the list.
    for (let i = 1; i < record!.skills.length; i++) expect(record!.skills[i]!.score).toBeLessThanOrEqual(record!.skills[i - 1]!.score);
    expect(record!.sections.map((s) => s.kind)).toEqual(['company', 'qualifications']);

    const [plain] = await tagger.extract([{ id: 'p1', text: posting }], { expand: false, threshold: 1.01 });
    expect(plain!.skills.every((s) => s.kind === 'found')).toBe(true);
    expect(plain!.skills.map((s) => s.label)).toEqual(found.map((s) => s.label));
  });

  it('weights a skill by its section', async () => {
    const [record] = await tagger.extract(
      [{ id: 'p2', text: ['Requirements:', 'Strong Scala skills.', 'Benefits:', 'Free Haskell courses.'].join('\n') }],
      { expand: false, threshold: 1.01 },
    );
    const scala = record!.skills.find((s) => s.label === 'Scala')!;
    const haskell = record!.skills.find((s) => s.label === 'Haskell')!;
    const { qualifications, benefits } = tagger.settings.sections;
    // Document score = the sentence's score × its section's weight.
    const [first, second] = await tagger.signals(['Strong Scala skills.', 'Free Haskell courses.']);
    const sentenceScore = (signals: typeof first, label: string): number => tagger.sentenceSkills(signals!, { threshold: 1.01 }).find((f) => labelOf(f.skill) === label)!.score;
    expect(scala.score).toBeCloseTo(sentenceScore(first, 'Scala') * qualifications, 12);
    expect(haskell.score).toBeCloseTo(sentenceScore(second, 'Haskell') * benefits, 12);
    expect(qualifications).toBeGreaterThan(benefits);
    expect(scala.mentions[0]!.section).toBe('qualifications');
    expect(haskell.mentions[0]!.section).toBe('benefits');
  });

  it('lets the semantic tagger add at most top k skills above the threshold, on sentences long enough', async () => {
    const text = 'You will build reliable systems for our customers every day';
    const [signals] = await tagger.signals([text]);
    expect(signals!.trieMatches).toEqual([]);
    expect(tagger.sentenceSkills(signals!, { threshold: 1.01 })).toEqual([]);
    const two = tagger.sentenceSkills(signals!, { threshold: -1, topK: 2 });
    expect(two).toHaveLength(2);
    for (const s of two) expect(s.trie).toBeNull();
    // A two-word line gives the model too little context: the trie alone tags it.
    const [short] = await tagger.signals(['Full-time position']);
    expect(tagger.sentenceSkills(short!, { threshold: -1, topK: 2 })).toEqual([]);
  });

  it('scores a sentence skill as its fused score over the largest possible one', async () => {
    const [signals] = await tagger.signals(['Experience with PostgreSQL and MySQL']);
    const { k, weights } = tagger.settings.fusion;
    const best = SKILL_SIGNALS.reduce((sum, s) => sum + weights[s] / (k + 1), 0);
    for (const found of tagger.sentenceSkills(signals!, { threshold: 1.01 })) {
      let fused = 0;
      for (const signal of SKILL_SIGNALS) {
        const rank = Array.from(signals!.rankings[signal].docs.subarray(0, tagger.settings.fusion.window)).indexOf(found.skill);
        if (rank >= 0) fused += weights[signal] / (k + rank + 1);
      }
      expect(found.score).toBeCloseTo(fused / best, 12);
    }
    expect(tagger.sentenceSkills(signals!, { threshold: 1.01 }).map((f) => labelOf(f.skill)).sort()).toEqual(['MySQL', 'PostgreSQL']);
  });

  it('emits the same skills when extraction skips the lexical rankings that cannot change them', async () => {
    const sentences = ['Strong Python and SQL skills', 'You will build reliable systems for our customers every day', 'Full-time', 'Experience with PostgreSQL, MySQL and Scala required'];
    for (const options of [{ threshold: 0.2, topK: 2 }, { threshold: -1, topK: 1 }, { threshold: 1.01, topK: 1 }]) {
      const full = await tagger.signals(sentences);
      const lean = await tagger.signals(sentences, undefined, undefined, { forExtraction: options });
      const leanSkills = lean.map((s) => tagger.sentenceSkills(s, options));
      const fullSkills = full.map((s) => tagger.sentenceSkills(s, options));
      // The same skills, scores and matches; the cosine within float32 rounding, because the lean
      // path embeds fewer sentences in its model call, which the model cuts into other runs.
      const withoutSimilarity = (skills: typeof fullSkills) => skills.map((row) => row.map(({ similarity: _, ...rest }) => rest));
      expect(withoutSimilarity(leanSkills)).toEqual(withoutSimilarity(fullSkills));
      leanSkills.forEach((row, i) =>
        row.forEach((skill, j) => {
          const expected = fullSkills[i]![j]!.similarity;
          if (expected === null || skill.similarity === null) expect(skill.similarity).toBe(expected);
          else expect(skill.similarity).toBeCloseTo(expected, 6);
        }),
      );
      // It did skip some: a sentence that emits nothing has no lexical ranking.
      if (options.threshold > 1) expect(lean[1]!.rankings.bm25.docs.length).toBe(0);
    }
  });

  it('ranks the trie matches longest first, a skill once', () => {
    const match = (skills: number[], tokens: number) => ({ start: 0, end: 1, surface: 'x', label: 'x', skills, source: 'alt' as const, tokens });
    const r = trieRanking([match([4], 1), match([2, 4], 3), match([7], 2)]);
    expect(Array.from(r.docs)).toEqual([2, 4, 7]);
    expect(Array.from(r.scores)).toEqual([3, 3, 2]);
  });
});

describe('evaluation', () => {
  it('ranks each query with each tagger, and scores what each would emit', async () => {
    const skills = tagger.files.skills;
    const index = (label: string): number => skills.findIndex((s) => s.text === label);
    const split: RetrievalSplit = {
      name: 'hand/validation',
      queryType: 'sentence',
      docType: 'skill',
      corpus: skills.map((s) => ({ id: s.id, text: s.text, labels: s.labels })),
      queries: [
        { id: 'q0', text: 'We code in TypeScript every day', relevant: [index('TypeScript')], source: 'hand:1' },
        { id: 'q1', text: 'You will be teaching children', relevant: [index('teach mathematics')], source: 'hand:2' },
      ],
      labelledPairs: [],
    };
    const signals = await splitSignals(tagger, split);
    const report = await evaluateSkillsSplit(tagger, split, ['rp@5', 'mrr'], signals);
    // The trie names TypeScript (rank 1); it matches nothing in q1, whose skill comes at its
    // taxonomy position among the unretrieved.
    const teach = index('teach mathematics');
    expect(report.ranking.trie.mrr).toBeCloseTo((1 + 1 / (teach + 1)) / 2, 12);
    expect(report.ranking.trie['rp@5']).toBeCloseTo((1 + (teach < 5 ? 1 : 0)) / 2, 12);
    // Extraction at a threshold no cosine reaches: only the trie emits, one right skill of two.
    const scores = extractionScores(tagger, split, signals, { threshold: 1.01, topK: 3 });
    expect(scores.combined).toEqual({ precision: 1, recall: 0.5, f1: 2 / 3, emitted: 1, gold: 2 });
    expect(scores.semantic).toEqual({ precision: 0, recall: 0, f1: 0, emitted: 0, gold: 2 });
    const tuned = tuneExtraction(tagger, [{ split, signals }]);
    expect(tuned.grid).toHaveLength(9 * 4);
    expect(tuned.f1).toBe(Math.max(...tuned.grid.map((g) => g.f1)));
  });
});

describe('kiln skills (CLI)', () => {
  it('extracts from a JSONL file to an output file, one record per document', () => {
    const work = mkdtempSync(join(tmpdir(), 'kiln-skills-cli-'));
    const input = join(work, 'postings.jsonl');
    writeFileSync(input, `${JSON.stringify({ id: 'a', text: 'Requirements: Python and SQL' })}\n${JSON.stringify({ id: 'b', text: 'Benefits: free lunch' })}\n`);
    const out = join(work, 'skills.jsonl');
    const r = kiln(['skills', 'extract', '--model', dir, '--input', input, '--out', out, '--threshold', '1', '--threads', '1']);
    expect(r.stderr).toContain(`2 documents → ${out}`);
    expect(r.status).toBe(0);
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; skills: Array<{ label: string; kind: string }> });
    expect(records.map((rec) => rec.id)).toEqual(['a', 'b']);
    expect(records[0]!.skills.filter((s) => s.kind === 'found').map((s) => s.label)).toEqual(expect.arrayContaining(['Python (computer programming)', 'SQL']));
  }, 60_000);

  it('reports a bad input or model as a user error (exit 2), and writes nothing', () => {
    const work = mkdtempSync(join(tmpdir(), 'kiln-skills-cli-'));
    const out = join(work, 'skills.jsonl');
    const missing = kiln(['skills', 'extract', '--model', join(work, 'nope'), '--input', join(work, 'x.jsonl'), '--out', out]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope.*skills\.json: cannot read it/);
    expect(missing.stderr).not.toMatch(/at .*\.js:\d+/);
    const badExt = kiln(['skills', 'extract', '--model', dir, '--input', join(work, 'postings.txt'), '--out', out]);
    expect(badExt.status).toBe(2);
    expect(badExt.stderr).toMatch(/unknown extension "\.txt"; expected \.jsonl/);
    expect(existsSync(out)).toBe(false);
    const notExport = kiln(['skills', 'build', '--model', work, '--out', join(work, 'built')]);
    expect(notExport.status).toBe(2);
    expect(notExport.stderr).toMatch(/no model\.json; expected a two-tower model directory written by `kiln export`/);
    expect(existsSync(join(work, 'built'))).toBe(false);
  }, 60_000);
});
