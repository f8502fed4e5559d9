/**
 * Character n-gram TF-IDF baseline (src/eval/tfidf-char.ts): the char_wb analyzer on
 * hand-computed cases, a hand-computed three-document index, and the whole score matrix, idf
 * table and vocabulary size against scikit-learn's TfidfVectorizer(analyzer='char_wb',
 * sublinear_tf=True) run in Debian's /usr/bin/python3 (python3-sklearn), for ngram_range (3, 5),
 * (2, 4) and (1, 3); then edge cases, option validation and a speed check at the sizes the
 * evaluators use.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { CharTfidfIndex, TFIDF_CHAR_DEFAULT_NGRAM_RANGE, charWbNgrams } from '../../src/eval/tfidf-char.js';
import { Rng } from '../../src/data/rng.js';
import { expectClose } from '../helpers/close.js';
import { runPython } from '../helpers/python.js';

describe('charWbNgrams', () => {
  it('pads words with one space and emits code-point windows for each n', () => {
    // " ab " has 4 code points: n = 3 → " ab", "ab "; n = 4 → " ab " (whole word, then stop).
    expect(charWbNgrams('ab')).toEqual([' ab', 'ab ', ' ab ']);
    // " abc " (5): n = 3 → 3 windows, n = 4 → 2, n = 5 → the whole padded word once.
    expect(charWbNgrams('abc')).toEqual([' ab', 'abc', 'bc ', ' abc', 'abc ', ' abc ']);
    // " abcd " (6): 4 + 3 + 2 windows; nothing is cut short.
    expect(charWbNgrams('abcd')).toEqual([' ab', 'abc', 'bcd', 'cd ', ' abc', 'abcd', 'bcd ', ' abcd', 'abcd ']);
    expect(TFIDF_CHAR_DEFAULT_NGRAM_RANGE).toEqual([3, 5]);
  });

  it('emits a padded word no longer than n once, whole, and skips the larger n', () => {
    expect(charWbNgrams('a')).toEqual([' a ']); // 3 code points ≤ n = 3
    expect(charWbNgrams('a', 4, 5)).toEqual([' a ']); // shorter than every n: still once
    expect(charWbNgrams('a b', 3, 5)).toEqual([' a ', ' b ']);
    // n = 1 and 2 include the padding spaces themselves.
    expect(charWbNgrams('ab', 1, 2)).toEqual([' ', 'a', 'b', ' ', ' a', 'ab', 'b ']);
  });

  it('lowercases, splits on runs of whitespace, and never spans two words', () => {
    expect(charWbNgrams('Hi  THERE', 3, 3)).toEqual([' hi', 'hi ', ' th', 'the', 'her', 'ere', 're ']);
    expect(charWbNgrams(' \tHi\n\nthere \r\n', 3, 3)).toEqual([' hi', 'hi ', ' th', 'the', 'her', 'ere', 're ']);
    expect(charWbNgrams('C++ (v3)', 3, 3)).toEqual([' c+', 'c++', '++ ', ' (v', '(v3', 'v3)', '3) ']);
    expect(charWbNgrams('')).toEqual([]);
    expect(charWbNgrams(' \t\n ')).toEqual([]);
  });

  it('counts code points, not UTF-16 units, and follows Python whitespace', () => {
    // "𝄞" is one code point (two UTF-16 units): " 𝄞a " has 4 code points.
    expect(charWbNgrams('𝄞A', 3, 3)).toEqual([' 𝄞a', '𝄞a ']);
    expect(charWbNgrams('🎵', 3, 5)).toEqual([' 🎵 ']);
    // Python's str.split() splits on U+001E and U+0085 (JS \s does not) but not on U+FEFF (JS \s does).
    expect(charWbNgrams('ab\u001ecd\u0085ef', 4, 4)).toEqual([' ab ', ' cd ', ' ef ']);
    expect(charWbNgrams('\ufeffab', 4, 4)).toEqual([' \ufeffab', '\ufeffab ']);
  });

  it('validates the range', () => {
    expect(() => charWbNgrams('x', 0, 2)).toThrow(RangeError);
    expect(() => charWbNgrams('x', 3, 2)).toThrow(/got \[3, 2\]/);
  });
});

describe('CharTfidfIndex: hand-computed three-document corpus', () => {
  // d0 = "ab"    → " ab", "ab ", " ab "              each tf 1
  // d1 = "AB ab" → the same three n-grams               each tf 2
  // d2 = "cd"    → " cd", "cd ", " cd "              each tf 1
  // N = 3; df = 2 for the "ab" n-grams, 1 for the "cd" ones:
  //   idf_ab = ln(4/3) + 1,  idf_cd = ln(4/2) + 1.
  // Within a document all weights are equal, so every normalised weight is 1/√3, and d0, d1
  // point the same way (the sublinear tf 1 + ln 2 cancels in the normalisation).
  const index = new CharTfidfIndex(['ab', 'AB ab', 'cd']);
  const idfAb = Math.log(4 / 3) + 1;
  const idfCd = Math.log(2) + 1;

  it('has the expected vocabulary and idf', () => {
    expect(index.numDocs).toBe(3);
    expect(index.ngramRange).toEqual([3, 5]);
    expect(index.vocabularySize).toBe(6);
    expect(index.idf(' ab ')).toBeCloseTo(idfAb, 15);
    expect(index.idf('cd ')).toBeCloseTo(idfCd, 15);
    expect(index.idf('xyz')).toBeUndefined();
    expect(index.idf(' AB')).toBeUndefined(); // the vocabulary is lowercased
  });

  it('scores cosines, dropping out-of-vocabulary query n-grams before normalising', () => {
    expectClose(index.scores('ab'), [1, 1, 0], { rtol: 0, atol: 1e-7 });
    // Unknown "xyz" n-grams do not dilute the query vector.
    expectClose(index.scores('ab xyz'), [1, 1, 0], { rtol: 0, atol: 1e-7 });
    // "ab cd": query weights idf_ab (×3) and idf_cd (×3); cos with d0 = 3·idf_ab/√3 / √(3·idf_ab² + 3·idf_cd²).
    const norm = Math.hypot(idfAb, idfCd);
    expectClose(index.scores('ab cd'), [idfAb / norm, idfAb / norm, idfCd / norm], { rtol: 0, atol: 1e-7 });
    // Repeating the query word changes nothing: every query weight scales by 1 + ln 2.
    expectClose(index.scores('ab ab ab cd cd cd'), [idfAb / norm, idfAb / norm, idfCd / norm], { rtol: 0, atol: 1e-7 });
  });

  it('gives exact zeros for empty and out-of-vocabulary queries', () => {
    expect(Array.from(index.scores(''))).toEqual([0, 0, 0]);
    expect(Array.from(index.scores('xyz qq'))).toEqual([0, 0, 0]);
  });

  it('scoreMatrix stacks rows and scoreInto writes at an offset', () => {
    const queries = ['ab', 'cd', '', 'ab cd'];
    const matrix = index.scoreMatrix(queries);
    expect(matrix.length).toBe(12);
    queries.forEach((query, q) => expect(Array.from(matrix.subarray(q * 3, q * 3 + 3))).toEqual(Array.from(index.scores(query))));
    const out = new Float32Array(7).fill(-1);
    index.scoreInto('cd', out, 2);
    expect(Array.from(out.subarray(0, 2))).toEqual([-1, -1]);
    expect(Array.from(out.subarray(5))).toEqual([-1, -1]);
    expectClose(out.subarray(2, 5), [0, 0, 1], { rtol: 0, atol: 1e-7 });
    expect(() => index.scoreInto('cd', out, 5)).toThrow(RangeError);
    expect(() => index.scoreInto('cd', out, -1)).toThrow(RangeError);
  });
});

// ─── scikit-learn reference ─────────────────────────────────────────────────────────────────

const CORPUS: readonly string[] = [
  'manage musical staff',
  'Python (computer programming)',
  'use spreadsheets software',
  'café crème',
  'Café Crème brûlée',
  'manage staff',
  'manage a team of staff',
  'JavaScript',
  'Java (computer programming)',
  'C++',
  'C#',
  'R',
  'operate forklift',
  'forklift forklift forklift',
  'perform data analysis',
  'data entry, data quality & data cleansing',
  'ISO 9001 quality standards',
  'apply 3D modelling techniques',
  'use Microsoft Office',
  'customer service',
  'provide customer support',
  'drive 7.5t trucks',
  'speak French',
  'parler français',
  'Straße bauen',
  'naïve Bayes classifiers',
  'SQL',
  'NoSQL databases',
  'work in a team',
  'teamwork principles',
  'clean   rooms\tand\nsurfaces',
  '  leading and trailing spaces  ',
  'e-mail / e-commerce',
  'health & safety at work',
  'first aid',
  'maintain HVAC systems (heating, ventilation, air-conditioning)',
  'ΟΔΟΣ οδηγός',
  'İstanbul logistics',
  'music 🎵 notation 𝄞',
  'record\u001ekeeping\u0085archive', // Python whitespace that JS \s lacks
  '\ufeffbyte order mark', // JS whitespace that Python keeps in the word
  '',
  '!!!',
  'a',
];

const QUERIES: readonly string[] = [
  'We are looking for an experienced Python developer with strong computer programming skills.',
  'The candidate will manage musical staff and coordinate rehearsals for the orchestra.',
  'Must be able to use spreadsheets software such as Microsoft Excel.',
  'Barista wanted: prepare café crème and espresso drinks.',
  'Forklift operator needed for warehouse; forklift licence required.',
  'Provide excellent customer service and support to clients.',
  'Experience with SQL and NoSQL databases (PostgreSQL, MongoDB) is a plus.',
  'Drivers with a C licence for 7.5t trucks wanted, Straße 12, Berlin.',
  '',
  'zzqx vvvw', // no n-gram of it occurs in the corpus
  'R',
  'Speak FRENCH fluently; parler français est un atout.',
  'ΟΔΟΣ İSTANBUL 🎵',
  'Record keeping and archive management',
  'first aid first aid first aid certificate required',
  'team',
];

/** n-grams whose idf is compared by name (some outside the vocabulary). */
const IDF_PROBES: readonly string[] = [' ma', 'staff', ' a ', 'rkli', ' r ', 'é c', ' 🎵 ', 'zzq', 'ος ', ' c++', 'data '];

const RANGES = { default: [3, 5], r24: [2, 4], r13: [1, 3] } as const satisfies Record<string, readonly [number, number]>;
type RangeName = keyof typeof RANGES;

/** Texts whose char_wb analysis is compared one-to-one with sklearn's build_analyzer(). */
const ANALYZER_TEXTS: readonly string[] = [
  ...CORPUS,
  ...QUERIES,
  'x\u001cy\u001dz\u001fw \u00a0\u2003\u3000end',
  'ab\u200bcd', // zero-width space: not whitespace in either language
  'ΣΑΣ ΟΔΟΣ.', // final sigma
  'lone \ud800 surrogate',
];

interface SklearnRun {
  scores: number[];
  shape: [number, number];
  vocabularySize: number;
  /** The whole fitted idf table, n-gram → idf. */
  idfTable: Record<string, number>;
  probes: Record<string, number | null>;
}

type SklearnReference = Record<RangeName, SklearnRun> & { analyzed: string[][] };

const SKLEARN_REFERENCE = String.raw`
import json, sys
from sklearn.feature_extraction.text import TfidfVectorizer

spec = json.load(sys.stdin)
docs, queries = spec["docs"], spec["queries"]
out = {}
for name, (lo, hi) in spec["ranges"].items():
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(lo, hi), sublinear_tf=True)
    vec.fit(docs)
    scores = (vec.transform(queries) @ vec.transform(docs).T).toarray()
    idf = {ngram: float(vec.idf_[column]) for ngram, column in vec.vocabulary_.items()}
    out[name] = {
        "scores": scores.ravel().tolist(),
        "shape": list(scores.shape),
        "vocabularySize": len(vec.vocabulary_),
        "idfTable": idf,
        "probes": {ngram: idf.get(ngram) for ngram in spec["probes"]},
    }
analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
out["analyzed"] = [analyzer(text) for text in spec["analyzerTexts"]]
print(json.dumps(out))
`;

describe('CharTfidfIndex vs scikit-learn TfidfVectorizer(analyzer="char_wb", sublinear_tf=True)', () => {
  let reference: SklearnReference;
  beforeAll(() => {
    const input = JSON.stringify({ docs: CORPUS, queries: QUERIES, ranges: RANGES, probes: IDF_PROBES, analyzerTexts: ANALYZER_TEXTS });
    reference = JSON.parse(runPython(['-c', SKLEARN_REFERENCE], { input })) as SklearnReference;
  });

  it('analyzes text exactly like build_analyzer()', () => {
    expect(reference.analyzed.length).toBe(ANALYZER_TEXTS.length);
    ANALYZER_TEXTS.forEach((text, i) => expect(charWbNgrams(text), JSON.stringify(text)).toEqual(reference.analyzed[i]));
  });

  for (const name of Object.keys(RANGES) as RangeName[]) {
    const ngramRange = RANGES[name];
    it(`matches the score matrix, idf table and vocabulary for ngram_range=(${ngramRange.join(', ')})`, () => {
      const sklearn = reference[name];
      const index = new CharTfidfIndex(CORPUS, name === 'default' ? {} : { ngramRange });
      expect(index.ngramRange).toEqual(ngramRange);
      expect(sklearn.shape).toEqual([QUERIES.length, CORPUS.length]);
      expect(index.vocabularySize).toBe(sklearn.vocabularySize);
      // Same size and every sklearn n-gram present with the same idf ⇒ the same vocabulary.
      for (const [ngram, idf] of Object.entries(sklearn.idfTable)) {
        const ours = index.idf(ngram);
        expect(ours, `idf(${JSON.stringify(ngram)})`).toBeDefined();
        expect(Math.abs((ours as number) - idf), `idf(${JSON.stringify(ngram)})`).toBeLessThanOrEqual(1e-9);
      }
      for (const [ngram, idf] of Object.entries(sklearn.probes)) {
        if (idf === null) expect(index.idf(ngram), ngram).toBeUndefined();
        else expect(Math.abs((index.idf(ngram) as number) - idf), ngram).toBeLessThanOrEqual(1e-9);
      }
      expectClose(index.scoreMatrix(QUERIES), sklearn.scores, { rtol: 0, atol: 1e-6, what: `scores ${name}` });
    });
  }

  it('the comparison is not vacuous', () => {
    const sklearn = reference.default;
    const numDocs = CORPUS.length;
    const row = (q: number): number[] => sklearn.scores.slice(q * numDocs, (q + 1) * numDocs);
    expect(sklearn.scores.filter((s) => s > 0).length).toBeGreaterThan(150);
    expect(Object.values(sklearn.probes).filter((idf) => idf !== null).length).toBeGreaterThan(6);
    expect(Object.values(sklearn.probes).filter((idf) => idf === null).length).toBeGreaterThan(0);
    // The empty and out-of-vocabulary queries are all zeros in sklearn and exactly zero here.
    const index = new CharTfidfIndex(CORPUS);
    for (const query of ['', 'zzqx vvvw']) {
      const q = QUERIES.indexOf(query);
      expect(row(q).every((s) => s === 0)).toBe(true);
      expect(Array.from(index.scores(query)).every((s) => s === 0)).toBe(true);
    }
    // The best match for the Python job ad is the Python skill.
    const python = row(0);
    expect(python.indexOf(Math.max(...python))).toBe(CORPUS.indexOf('Python (computer programming)'));
  });
});

describe('CharTfidfIndex: edge cases and options', () => {
  it('handles an empty corpus and a corpus without n-grams', () => {
    const empty = new CharTfidfIndex([]);
    expect(empty.numDocs).toBe(0);
    expect(empty.vocabularySize).toBe(0);
    expect(empty.scores('anything').length).toBe(0);
    expect(empty.scoreMatrix(['a', 'b']).length).toBe(0);
    // sklearn refuses to fit this ("empty vocabulary"); here every score is simply 0.
    const blank = new CharTfidfIndex(['', ' \t ']);
    expect(blank.vocabularySize).toBe(0);
    expect(Array.from(blank.scores('abc'))).toEqual([0, 0]);
  });

  it('rejects invalid n-gram ranges, naming the value', () => {
    const docs = ['abc'];
    expect(() => new CharTfidfIndex(docs, { ngramRange: [0, 3] })).toThrow(RangeError);
    expect(() => new CharTfidfIndex(docs, { ngramRange: [0, 3] })).toThrow(/ngramRange .*got \[0, 3\]/);
    expect(() => new CharTfidfIndex(docs, { ngramRange: [4, 3] })).toThrow(/got \[4, 3\]/);
    expect(() => new CharTfidfIndex(docs, { ngramRange: [2.5, 3] })).toThrow(/got \[2\.5, 3\]/);
    expect(() => new CharTfidfIndex(docs, { ngramRange: [Number.NaN, 3] })).toThrow(/got \[NaN, 3\]/);
    expect(() => new CharTfidfIndex(docs, { ngramRange: [1, 2, 3] as unknown as [number, number] })).toThrow(RangeError);
    expect(new CharTfidfIndex(docs, { ngramRange: [1, 1] }).vocabularySize).toBe(4); // " ", "a", "b", "c"
  });
});

/** Random lowercase pseudo-word over a small alphabet, so that n-grams recur across texts. */
function randomWord(rng: Rng): string {
  const alphabet = 'abcdefghiklmnoprstuvwy';
  const length = 2 + Math.floor(rng.next() * 9);
  let word = '';
  for (let i = 0; i < length; i++) word += alphabet[Math.floor(rng.next() ** 1.5 * alphabet.length)];
  return word;
}

function randomText(rng: Rng, lexicon: readonly string[], minWords: number, maxWords: number): string {
  const length = minWords + Math.floor(rng.next() * (maxWords - minWords + 1));
  const words: string[] = [];
  for (let i = 0; i < length; i++) words.push(lexicon[Math.floor(lexicon.length * rng.next() ** 2)] as string);
  return words.join(' ');
}

describe('CharTfidfIndex: speed', () => {
  it('indexes 14,000 short documents and scores 200 long sentences in a few seconds', () => {
    const rng = new Rng(5);
    const lexicon = Array.from({ length: 8_000 }, () => randomWord(rng));
    const docs = Array.from({ length: 14_000 }, () => randomText(rng, lexicon, 1, 6));
    const queries = Array.from({ length: 200 }, () => randomText(rng, lexicon, 15, 40));
    let start = performance.now();
    const index = new CharTfidfIndex(docs);
    const buildSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    const matrix = index.scoreMatrix(queries);
    const perQueryMs = (performance.now() - start) / queries.length;
    expect(matrix.length).toBe(docs.length * queries.length);
    expect(index.vocabularySize).toBeGreaterThan(10_000);
    // Generous bounds for a loaded machine.
    expect(buildSeconds).toBeLessThan(10);
    expect(perQueryMs).toBeLessThan(50);
  });
});
