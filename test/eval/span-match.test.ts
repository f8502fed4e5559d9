/**
 * Span precision/recall (src/eval/span-match.ts): exact and partial matching on hand-computed
 * cases, then the real ESCO + Stack Overflow trie on SkillSpan dev with its numbers pinned, so a
 * change in the trie's behaviour shows up here.
 */
import { describe, expect, it } from 'vitest';

import { createContext } from '../../src/data/files.js';
import { buildTaxonomyTrie } from '../../src/data/skill-labels.js';
import { scoreSpans, trieSpanScores } from '../../src/eval/span-match.js';
import { DATA_ROOT } from '../data/root.js';

const span = (start: number, end: number): { start: number; end: number } => ({ start, end });

describe('scoreSpans', () => {
  it('exact needs the same start and end; partial needs one shared character', () => {
    const s = scoreSpans([{ gold: [span(0, 6), span(11, 21)], predicted: [span(0, 6), span(11, 15), span(30, 35)] }]);
    expect(s.predicted).toBe(3);
    expect(s.gold).toBe(2);
    // Exact: only [0, 6) → p = 1/3, r = 1/2, F1 = 2·(1/6) / (5/6) = 0.4.
    expect(s.exact.tp).toBe(1);
    expect(s.exact.precision).toBeCloseTo(1 / 3, 12);
    expect(s.exact.recall).toBe(0.5);
    expect(s.exact.f1).toBeCloseTo(0.4, 12);
    // Partial: [0, 6) and [11, 15) overlap gold, [30, 35) does not; both gold spans are hit
    // → p = 2/3, r = 1, F1 = 2·(2/3) / (5/3) = 0.8.
    expect(s.partial).toEqual({ precisionTp: 2, recallTp: 2, precision: 2 / 3, recall: 1, f1: expect.closeTo(0.8, 12) as number });
  });

  it('partial counts precision and recall separately: one long prediction over two gold spans, two predictions inside one', () => {
    const wide = scoreSpans([{ gold: [span(0, 5), span(10, 15)], predicted: [span(0, 20)] }]);
    expect(wide.exact.tp).toBe(0);
    expect(wide.partial).toMatchObject({ precisionTp: 1, recallTp: 2, precision: 1, recall: 1, f1: 1 });
    const split = scoreSpans([{ gold: [span(0, 20)], predicted: [span(0, 5), span(10, 15)] }]);
    expect(split.partial).toMatchObject({ precisionTp: 2, recallTp: 1, precision: 1, recall: 1 });
    // End is exclusive: [0, 5) and [5, 10) share no character.
    const touching = scoreSpans([{ gold: [span(5, 10)], predicted: [span(0, 5)] }]);
    expect(touching.partial).toMatchObject({ precisionTp: 0, recallTp: 0, precision: 0, recall: 0, f1: 0 });
  });

  it('a repeated prediction is one prediction; a skill and a knowledge span over the same characters are one gold span', () => {
    const repeated = scoreSpans([{ gold: [span(0, 6)], predicted: [span(0, 6), span(0, 6)] }]);
    expect(repeated).toMatchObject({ predicted: 1, gold: 1, exact: { tp: 1, precision: 1, recall: 1, f1: 1 } });
    // SkillSpan-shaped gold: extra fields (kind, text) are ignored, kinds are not compared.
    const gold = [
      { kind: 'skill', start: 0, end: 6, text: 'Python' },
      { kind: 'knowledge', start: 0, end: 6, text: 'Python' },
      { kind: 'knowledge', start: 11, end: 14, text: 'SQL' },
    ];
    const coinciding = scoreSpans([{ gold, predicted: [span(0, 6)] }]);
    expect(coinciding.gold).toBe(2);
    expect(coinciding.exact).toEqual({ tp: 1, precision: 1, recall: 0.5, f1: expect.closeTo(2 / 3, 12) as number });
    expect(coinciding.partial).toMatchObject({ precisionTp: 1, recallTp: 1, precision: 1, recall: 0.5 });
  });

  it('micro-averages: counts are summed over sentences before dividing', () => {
    const s = scoreSpans([
      { gold: [span(0, 4)], predicted: [span(0, 4)] },
      { gold: [], predicted: [span(0, 3), span(4, 8), span(9, 12)] },
    ]);
    // Micro precision 1/4 (a macro average of the two sentences would give (1 + 0) / 2 = 0.5).
    expect(s).toMatchObject({ predicted: 4, gold: 1, exact: { tp: 1, precision: 0.25, recall: 1, f1: 0.4 } });
  });

  it('0 / 0 is 0: no sentences, no predictions, no gold', () => {
    const zero = { predicted: 0, gold: 0, exact: { tp: 0, precision: 0, recall: 0, f1: 0 }, partial: { precisionTp: 0, recallTp: 0, precision: 0, recall: 0, f1: 0 } };
    expect(scoreSpans([])).toEqual(zero);
    expect(scoreSpans([{ gold: [], predicted: [] }])).toEqual(zero);
    expect(scoreSpans([{ gold: [span(0, 3)], predicted: [] }])).toEqual({ ...zero, gold: 1 });
    expect(scoreSpans([{ gold: [], predicted: [span(0, 3)] }])).toEqual({ ...zero, predicted: 1 });
  });

  it('rejects a span that is not a non-empty [start, end) of integers, naming the sentence', () => {
    expect(() => scoreSpans([{ gold: [], predicted: [] }, { gold: [span(4, 4)], predicted: [] }])).toThrow(/sentence 1: gold span \[4, 4\) is not a character span; expected integers 0 <= start < end/);
    expect(() => scoreSpans([{ gold: [], predicted: [span(-1, 2)] }])).toThrow(/predicted span \[-1, 2\)/);
    expect(() => scoreSpans([{ gold: [], predicted: [span(0.5, 2)] }])).toThrow(RangeError);
  });
});

describe('trieSpanScores on SkillSpan dev', () => {
  it('the ESCO + Stack Overflow trie against the union of skill and knowledge spans (pinned)', async () => {
    const ctx = createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' });
    const { trie } = await buildTaxonomyTrie(ctx);
    const s = await trieSpanScores(ctx, trie, 'dev');
    expect(s.sentences).toBe(3_174);
    // 1,070 skill + 1,093 knowledge spans; none coincide in dev.
    expect(s.gold).toBe(2_163);
    expect(s.predicted).toBe(925);
    expect(s.exact.tp).toBe(245);
    expect(s.exact.precision).toBeCloseTo(0.2649, 4); // 245 / 925
    expect(s.exact.recall).toBeCloseTo(0.1133, 4); // 245 / 2,163
    expect(s.exact.f1).toBeCloseTo(0.1587, 4);
    expect(s.partial.precisionTp).toBe(517);
    expect(s.partial.recallTp).toBe(510);
    expect(s.partial.precision).toBeCloseTo(0.5589, 4); // 517 / 925
    expect(s.partial.recall).toBeCloseTo(0.2358, 4); // 510 / 2,163
    expect(s.partial.f1).toBeCloseTo(0.3317, 4);
  });
});
