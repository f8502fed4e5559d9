/**
 * Section segmentation of job postings: hand-made postings with exact sections, offsets and
 * sentences (headings, "Label: content" lines, bullets, cue phrases before any heading and
 * under a neutral heading, CRLF, empty input), the weights, and the first 20 SkillSpan dev
 * postings. Those 20 are all "tech" postings (StackOverflow jobs) with the site's fixed frame —
 * a "Job description:" meta block ("Job type:", "Company size:"…), a "Technologies" tag line,
 * "Job description", the body, "Job benefits:", "Company description:" — and in between the
 * employers' own headings, checked by eye: 18 of the 20 have a recognised qualifications heading
 * of their own ("Qualifications", "Requirements", "Your profile"…; tech:15 has none, and
 * tech:16's "Skills & experiences exciting to us…" is in no list) and 15 a responsibilities
 * heading ("What you'll do", "Responsibilities", "Your mission"…; tech:2, 8, 10, 15 and 18 have
 * none).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  DEFAULT_SECTION_WEIGHTS,
  SECTION_KINDS,
  cueKind,
  sectionWeight,
  segmentPosting,
  type SegmentedPosting,
  type SectionKind,
} from '../../src/skills/sections.js';
import { DATA_ROOT } from '../data/root.js';

/** Every sentence and section slices back to itself; sections are ordered and hold their sentences. */
function expectConsistent(text: string, seg: SegmentedPosting): void {
  let prevEnd = 0;
  for (const s of seg.sentences) {
    expect(text.slice(s.start, s.end)).toBe(s.text);
    expect(s.text).toBe(s.text.trim());
    expect(s.text.length).toBeGreaterThan(0);
    expect(s.text).not.toMatch(/[\r\n]/);
    expect(s.start).toBeGreaterThanOrEqual(prevEnd);
    prevEnd = s.end;
    const sec = seg.sections[s.section];
    expect(sec).toBeDefined();
    expect(s.start).toBeGreaterThanOrEqual(sec?.start ?? Infinity);
    expect(s.end).toBeLessThanOrEqual(sec?.end ?? -Infinity);
  }
  let prevSectionEnd = 0;
  for (const sec of seg.sections) {
    expect(sec.start).toBeGreaterThanOrEqual(prevSectionEnd);
    expect(sec.end).toBeGreaterThan(sec.start);
    prevSectionEnd = sec.end;
  }
}

const POSTING = [
  'Acme Robotics',
  '',
  'About us',
  'We build warehouse robots.',
  '',
  "What you'll do:",
  '• Design APIs in Go',
  '- Review code; mentor juniors',
  '',
  'Requirements: 5 years of Java',
  '* Experience with Kubernetes',
  '',
  'What we offer',
  '· Pension. Flexible hours!',
];

const POSTING_SENTENCES = [
  ['Acme Robotics', 0],
  ['We build warehouse robots.', 1],
  ['Design APIs in Go', 2],
  ['Review code;', 2],
  ['mentor juniors', 2],
  ['5 years of Java', 3],
  ['Experience with Kubernetes', 3],
  ['Pension.', 4],
  ['Flexible hours!', 4],
];

describe('segmentPosting: headings', () => {
  it('splits a posting at its headings, with exact kinds, offsets and sentences', () => {
    const text = POSTING.join('\n');
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sections.map((s) => [s.kind, s.heading, s.decidedBy])).toEqual([
      ['other', null, 'default'],
      ['company', 'About us', 'heading'],
      ['responsibilities', "What you'll do", 'heading'],
      ['qualifications', 'Requirements', 'heading'],
      ['benefits', 'What we offer', 'heading'],
    ]);
    expect(seg.sentences.map((s) => [s.text, s.section])).toEqual(POSTING_SENTENCES);
    // A section runs from its heading line to the end of its last sentence.
    expect(seg.sections.map((s) => text.slice(s.start, s.end))).toEqual([
      'Acme Robotics',
      'About us\nWe build warehouse robots.',
      "What you'll do:\n• Design APIs in Go\n- Review code; mentor juniors",
      'Requirements: 5 years of Java\n* Experience with Kubernetes',
      'What we offer\n· Pension. Flexible hours!',
    ]);
    // The content of "Requirements: 5 years of Java" starts after the colon and its space.
    const java = seg.sentences[5];
    expect(java?.start).toBe(text.indexOf('5 years of Java'));
    expect(java?.end).toBe(text.indexOf('5 years of Java') + '5 years of Java'.length);
  });

  it('keeps CRLF postings identical up to offsets, with no \\r in any sentence', () => {
    const text = POSTING.join('\r\n');
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sentences.map((s) => [s.text, s.section])).toEqual(POSTING_SENTENCES);
    expect(seg.sections.map((s) => s.kind)).toEqual(['other', 'company', 'responsibilities', 'qualifications', 'benefits']);
    expect(text.slice(seg.sections[3]?.start, seg.sections[3]?.end)).toBe('Requirements: 5 years of Java\r\n* Experience with Kubernetes');
    // Old Mac line ends too.
    const cr = POSTING.join('\r');
    expect(segmentPosting(cr).sentences.map((s) => [s.text, s.section])).toEqual(POSTING_SENTENCES);
  });

  it.each<[string, SectionKind, string]>([
    ['Requirements', 'qualifications', 'Requirements'],
    ['REQUIREMENTS:', 'qualifications', 'REQUIREMENTS'],
    ['Your profile', 'qualifications', 'Your profile'],
    ['**Who you are**', 'qualifications', 'Who you are'],
    ['Nice to have', 'qualifications', 'Nice to have'],
    ['Must have:', 'qualifications', 'Must have'],
    ['Skills', 'qualifications', 'Skills'],
    ['Required Qualifications', 'qualifications', 'Required Qualifications'],
    ['What you bring to the table', 'qualifications', 'What you bring to the table'],
    ['Responsibilities;', 'responsibilities', 'Responsibilities'],
    ['## Your tasks', 'responsibilities', 'Your tasks'],
    ['What You’ll Do', 'responsibilities', 'What You’ll Do'],
    ['The role', 'responsibilities', 'The role'],
    ['About the role', 'responsibilities', 'About the role'],
    ['Benefits', 'benefits', 'Benefits'],
    ['We offer:', 'benefits', 'We offer'],
    ['Perks', 'benefits', 'Perks'],
    ['Job benefits:', 'benefits', 'Job benefits'],
    ['About us', 'company', 'About us'],
    ['About the company', 'company', 'About the company'],
    ['Company description:', 'company', 'Company description'],
    ['Who we are', 'company', 'Who we are'],
  ])('recognises the heading %j as %s', (line, kind, label) => {
    const text = `${line}\nJava`;
    const seg = segmentPosting(text);
    expect(seg.sections).toEqual([{ kind, heading: label, start: 0, end: text.length, decidedBy: 'heading' }]);
    expect(seg.sentences).toEqual([{ text: 'Java', start: line.length + 1, end: text.length, section: 0 }]);
  });

  it('treats unrecognised heading-looking lines as sentences that do not change the section', () => {
    const text = 'Benefits\nHealth insurance\nSenior Backend Engineer\nGym and wellness benefits';
    const seg = segmentPosting(text);
    expect(seg.sections.map((s) => s.kind)).toEqual(['benefits']);
    expect(seg.sentences.map((s) => s.text)).toEqual(['Health insurance', 'Senior Backend Engineer', 'Gym and wellness benefits']);
  });

  it('ignores cue phrases under a typed heading', () => {
    const seg = segmentPosting('Requirements\nWe offer relocation.\nYou will have Go');
    expect(seg.sections.map((s) => [s.kind, s.decidedBy])).toEqual([['qualifications', 'heading']]);
    expect(seg.sentences.map((s) => s.section)).toEqual([0, 0]);
  });

  it('classifies by cues again under a neutral heading ("Job description")', () => {
    const text = 'Benefits\nPension\nJob description\nWe are a startup.\nYou will write Go.\nJob type: Full-time';
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sections.map((s) => [s.kind, s.heading, s.decidedBy])).toEqual([
      ['benefits', 'Benefits', 'heading'],
      ['company', 'Job description', 'cue'],
      ['responsibilities', null, 'cue'],
      ['other', 'Job type', 'default'],
    ]);
    expect(seg.sentences.map((s) => [s.text, s.section])).toEqual([
      ['Pension', 0],
      ['We are a startup.', 1],
      ['You will write Go.', 2],
      ['Full-time', 3],
    ]);
    expect(text.slice(seg.sections[1]?.start, seg.sections[1]?.end)).toBe('Job description\nWe are a startup.');
  });
});

describe('segmentPosting: cues before any heading', () => {
  it('lets the first cue decide a run, and a cue of another kind start a new section', () => {
    const lines = [
      'Acme is a fintech in Berlin.', // no cue: takes the kind of the run's first cue
      'We are a team of 20 engineers.', // company
      'You will build payment APIs.', // responsibilities
      'You will also own the CI.', // responsibilities: same section
      'You have 3 years of experience with Go.', // qualifications
      'Qualifications',
      'Rust is a plus',
    ];
    const text = lines.join('\n');
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sections.map((s) => [s.kind, s.heading, s.decidedBy])).toEqual([
      ['company', null, 'cue'],
      ['responsibilities', null, 'cue'],
      ['qualifications', null, 'cue'],
      ['qualifications', 'Qualifications', 'heading'],
    ]);
    expect(seg.sentences.map((s) => s.section)).toEqual([0, 0, 1, 1, 2, 3]);
    expect(seg.sections[0]?.start).toBe(0);
    expect(seg.sections[1]?.start).toBe(text.indexOf('You will build'));
    expect(text.slice(seg.sections[2]?.start, seg.sections[2]?.end)).toBe('You have 3 years of experience with Go.');
  });

  it('starts a new cue section mid-line, at the sentence that carries the new cue', () => {
    const text = 'We are a small studio. You will ship games. We offer a pension.';
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sections.map((s) => [s.kind, text.slice(s.start, s.end)])).toEqual([
      ['company', 'We are a small studio.'],
      ['responsibilities', 'You will ship games.'],
      ['benefits', 'We offer a pension.'],
    ]);
  });

  it('calls text with no cue and no heading other (default)', () => {
    const text = 'Senior Engineer\nBerlin';
    expect(segmentPosting(text)).toEqual({
      sections: [{ kind: 'other', heading: null, start: 0, end: text.length, decidedBy: 'default' }],
      sentences: [
        { text: 'Senior Engineer', start: 0, end: 15, section: 0 },
        { text: 'Berlin', start: 16, end: 22, section: 0 },
      ],
    });
  });

  it('cueKind takes the earliest cue, then the longer one', () => {
    expect(cueKind('You will design APIs.')).toBe('responsibilities');
    expect(cueKind('You will have 5 years of Go.')).toBe('qualifications');
    expect(cueKind('You’ll need a degree in CS.')).toBe('qualifications');
    expect(cueKind('We are looking for a Go developer.')).toBeNull();
    expect(cueKind('We are happy to offer a pension.')).toBe('benefits');
    expect(cueKind('Founded in 2013, we sell insurance.')).toBe('company');
    expect(cueKind('Java and SQL')).toBeNull();
    // Word-bounded: "gymnastics" is not "gym".
    expect(cueKind('Gymnastics club')).toBeNull();
  });
});

describe('segmentPosting: sentences', () => {
  it('returns nothing for empty or blank input', () => {
    expect(segmentPosting('')).toEqual({ sections: [], sentences: [] });
    expect(segmentPosting('  \n\r\n\t \u200d\n')).toEqual({ sections: [], sentences: [] });
  });

  it('splits on . ! ? ; and bullets, keeps abbreviations and decimals, drops markers', () => {
    const text = [
      'Experience with e.g. Docker. Good English! Remote? Yes',
      'Go; Rust; C++',
      '• Kafka • Spark ☞ Flink',
      '1. Python 3.11 is required.',
      '2) SQL',
      '– Scala',
      '\u200d',
      'Job benefits: -',
    ].join('\n');
    const seg = segmentPosting(text);
    expectConsistent(text, seg);
    expect(seg.sentences.map((s) => s.text)).toEqual([
      'Experience with e.g. Docker.',
      'Good English!',
      'Remote?',
      'Yes',
      'Go;',
      'Rust;',
      'C++',
      'Kafka',
      'Spark',
      'Flink',
      'Python 3.11 is required.',
      'SQL',
      'Scala',
    ]);
    // "Job benefits: -" is a heading whose content is only a bullet marker: no sentence.
    expect(seg.sections.at(-1)).toMatchObject({ kind: 'benefits', heading: 'Job benefits', decidedBy: 'heading' });
  });

  it('keeps a word that happens to start with a hyphen-like mark mid-line', () => {
    const seg = segmentPosting('Full-time - remote * optional');
    expect(seg.sentences.map((s) => s.text)).toEqual(['Full-time - remote * optional']);
  });
});

describe('section weights', () => {
  it('orders the defaults qualifications > responsibilities > other > benefits > company, all in (0, 1]', () => {
    expect([...SECTION_KINDS].sort()).toEqual(Object.keys(DEFAULT_SECTION_WEIGHTS).sort());
    for (const k of SECTION_KINDS) {
      expect(DEFAULT_SECTION_WEIGHTS[k]).toBeGreaterThan(0);
      expect(DEFAULT_SECTION_WEIGHTS[k]).toBeLessThanOrEqual(1);
    }
    const w = (k: SectionKind): number => sectionWeight(k);
    expect(w('qualifications')).toBe(1);
    expect(w('qualifications')).toBeGreaterThan(w('responsibilities'));
    expect(w('responsibilities')).toBeGreaterThan(w('other'));
    expect(w('other')).toBeGreaterThan(w('benefits'));
    expect(w('benefits')).toBeGreaterThan(w('company'));
    expect(Object.isFrozen(DEFAULT_SECTION_WEIGHTS)).toBe(true);
  });

  it('takes overrides, falls back to the defaults, and rejects weights outside [0, 1]', () => {
    expect(sectionWeight('company', { company: 0.5 })).toBe(0.5);
    expect(sectionWeight('benefits', { company: 0.5 })).toBe(DEFAULT_SECTION_WEIGHTS.benefits);
    expect(sectionWeight('benefits', { benefits: 0 })).toBe(0);
    expect(() => sectionWeight('other', { other: 1.5 })).toThrow(/'other' must be a number in \[0, 1\], got 1\.5/);
    expect(() => sectionWeight('other', { other: Number.NaN })).toThrow(RangeError);
  });
});

describe('segmentPosting on SkillSpan dev', () => {
  interface Posting {
    key: string;
    text: string;
  }

  /** The first `n` postings: consecutive lines with one (source, idx), tokens joined by ' ', lines by '\n'. */
  function skillspanPostings(n: number): Posting[] {
    const raw = readFileSync(join(DATA_ROOT, 'skillspan', 'json', 'dev.json'), 'utf8');
    const postings: { key: string; lines: string[] }[] = [];
    for (const line of raw.split('\n')) {
      if (line.trim() === '') continue;
      const row = JSON.parse(line) as { idx: number; tokens: string[]; source: string };
      const key = `${row.source}:${row.idx}`;
      const last = postings.at(-1);
      if (last?.key === key) last.lines.push(row.tokens.join(' '));
      else if (postings.length === n) break;
      else postings.push({ key, lines: [row.tokens.join(' ')] });
    }
    return postings.map((p) => ({ key: p.key, text: p.lines.join('\n') }));
  }

  const alnum = (s: string): string => s.replace(/[^\p{L}\p{N}]/gu, '');

  it('segments the first 20 postings consistently, covering every line', () => {
    const postings = skillspanPostings(20);
    expect(postings).toHaveLength(20);
    expect(postings[0]?.key).toBe('tech:1');

    let withQualificationsHeading = 0;
    let withResponsibilitiesHeading = 0;
    for (const { key, text } of postings) {
      const seg = segmentPosting(text);
      expectConsistent(text, seg);

      // Every letter and digit of every line is in a sentence of that line or in the heading
      // that starts it: nothing is lost, nothing counted twice.
      let lineStart = 0;
      for (const line of text.split('\n')) {
        const lineEnd = lineStart + line.length;
        const inLine = seg.sentences.filter((s) => s.start >= lineStart && s.end <= lineEnd).map((s) => s.text);
        const offset = lineStart + (line.length - line.trimStart().length);
        const heading = seg.sections.find((s) => s.start === offset && s.heading !== null)?.heading ?? '';
        expect(alnum(heading + inLine.join('')), `${key}: ${line}`).toBe(alnum(line));
        lineStart = lineEnd + 1;
      }

      // The site's frame: "Job benefits:" and "Company description:" always start their sections.
      for (const sec of seg.sections) {
        const line = text.slice(sec.start, text.indexOf('\n', sec.start) === -1 ? text.length : text.indexOf('\n', sec.start));
        if (line.startsWith('Job benefits:')) expect(sec, key).toMatchObject({ kind: 'benefits', decidedBy: 'heading' });
        if (line === 'Company description:') expect(sec, key).toMatchObject({ kind: 'company', decidedBy: 'heading' });
      }

      // "Technologies" (the site's tag line) is a qualifications heading in every tech posting,
      // so count only the employers' own headings.
      const headed = seg.sections.filter((s) => s.decidedBy === 'heading' && s.heading !== 'Technologies');
      if (headed.some((s) => s.kind === 'qualifications')) withQualificationsHeading++;
      if (headed.some((s) => s.kind === 'responsibilities')) withResponsibilitiesHeading++;
    }
    expect(withQualificationsHeading).toBe(18);
    expect(withResponsibilitiesHeading).toBe(15);
  });

  it('finds the headings of tech:1', () => {
    const [first] = skillspanPostings(1);
    if (first === undefined) throw new Error('SkillSpan dev has no postings');
    const seg = segmentPosting(first.text);
    const headed = seg.sections.filter((s) => s.decidedBy === 'heading').map((s) => [s.heading, s.kind]);
    expect(headed).toEqual([
      ['Technologies', 'qualifications'],
      ['Who we are looking for', 'qualifications'],
      ['Qualifications', 'qualifications'],
      ['Job benefits', 'benefits'],
      ['Company description', 'company'],
      ['What do we do', 'company'],
      ["What you'll do", 'responsibilities'],
    ]);
    // The body under the neutral "Job description" heading is classified by cues.
    const body = seg.sections.filter((s) => s.decidedBy === 'cue').map((s) => s.kind);
    expect(body).toEqual(['company', 'responsibilities', 'qualifications']);
    const skillSentence = seg.sentences.find((s) => s.text.startsWith('Deep experience with DevOps architecture'));
    expect(seg.sections[skillSentence?.section ?? -1]?.kind).toBe('qualifications');
  });
});
