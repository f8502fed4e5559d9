/**
 * MLM data helpers: packing covers every token once in full sequences; BERT's masking recipe
 * holds statistically (15% chosen, 80/10/10) over ~250k tokens; specials and padding are never
 * chosen; labels are -100 exactly off the chosen positions; whole-word masking takes every
 * piece of a word together, checked on real WordPiece output (bert-base-uncased vocab, SkillSpan
 * train sentences); draws are a pure function of the seed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { IGNORE_INDEX, continuationTable, maskTokens, packSequences, specialTokenIds, type MaskOptions } from '../../src/data/mlm.js';
import { Rng } from '../../src/data/rng.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { DATA_ROOT } from './root.js';

const tokenizer = WordPieceTokenizer.fromVocabFile(join(DATA_ROOT, 'bert-vocab/vocab.txt'));
const specials = specialTokenIds(tokenizer);
const table = continuationTable(tokenizer);
const base: MaskOptions = { maskId: tokenizer.maskId, padId: tokenizer.padId, vocabSize: tokenizer.vocabSize, specialIds: specials };
const special = { clsId: tokenizer.clsId, sepId: tokenizer.sepId };

/** SkillSpan training sentences as WordPiece ids (real '##' pieces). */
function skillspanPieces(limit: number): Int32Array[] {
  const lines = readFileSync(join(DATA_ROOT, 'skillspan/json/train.json'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, limit).map((l) => tokenizer.pieceIds((JSON.parse(l) as { tokens: string[] }).tokens.join(' ')));
}

/** Random non-special ids, in sequences with [CLS]/[SEP] and trailing padding. */
function randomBatch(rows: number, length: number, seed: number): Int32Array[] {
  const rng = new Rng(seed);
  const out: Int32Array[] = [];
  for (let r = 0; r < rows; r++) {
    const row = new Int32Array(length).fill(tokenizer.padId);
    const used = length - rng.int(16); // 0..15 pads
    row[0] = tokenizer.clsId;
    for (let i = 1; i < used - 1; i++) {
      let id: number;
      do id = rng.int(tokenizer.vocabSize);
      while (specials.has(id));
      row[i] = id;
    }
    row[used - 1] = tokenizer.sepId;
    out.push(row);
  }
  return out;
}

describe('vocabulary helpers', () => {
  it('specialTokenIds: the five BERT specials and 994 [unusedN]; continuationTable marks exactly the ## pieces', () => {
    expect(specials.size).toBe(5 + 994);
    for (const t of ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[unused0]', '[unused993]']) expect(specials.has(tokenizer.tokenToId(t) as number)).toBe(true);
    expect(specials.has(tokenizer.tokenToId('the') as number)).toBe(false);
    expect(table.length).toBe(tokenizer.vocabSize);
    expect(table[tokenizer.tokenToId('##ing') as number]).toBe(1);
    expect(table[tokenizer.tokenToId('ing') as number]).toBe(0);
    expect(table[tokenizer.tokenToId('#') as number]).toBe(0);
    const pieces = [...Array(tokenizer.vocabSize).keys()].filter((id) => /^##./.test(tokenizer.idToToken(id) ?? ''));
    expect(pieces.length).toBeGreaterThan(5000);
    expect(table.reduce((n, v) => n + v, 0)).toBe(pieces.length);
    expect(pieces.every((id) => table[id] === 1)).toBe(true);
  });
});

describe('packSequences', () => {
  it('covers every token exactly once, in order, in full sequences of ≤ maxLength', () => {
    // Unique ids (≥ 1000, never [CLS]/[SEP]) so "exactly once" is checkable; lengths include
    // empty, tiny and longer-than-a-sequence documents.
    const rng = new Rng(3);
    let next = 1000;
    const docs: Int32Array[] = [];
    for (let d = 0; d < 500; d++) {
      const n = d % 50 === 0 ? 0 : d % 37 === 0 ? 300 + rng.int(200) : 1 + rng.int(40);
      docs.push(Int32Array.from({ length: n }, () => next++));
    }
    for (const maxLength of [2, 3, 16, 128, 512]) {
      const seqs = packSequences(docs, maxLength, special);
      const content: number[] = [];
      const errors: string[] = [];
      seqs.forEach((s, i) => {
        if (s.length > maxLength || (i < seqs.length - 1 && s.length !== maxLength)) errors.push(`sequence ${i}: length ${s.length}`);
        if (s[0] !== special.clsId || s.lastIndexOf(special.clsId) !== 0) errors.push(`sequence ${i}: [CLS] not (only) first`);
        for (let j = 1; j < s.length; j++) if (s[j] !== special.sepId) content.push(s[j] as number);
      });
      expect(errors, `maxLength ${maxLength}`).toEqual([]);
      // every input token, once, in input order
      expect(content.length).toBe(next - 1000);
      expect(content.every((id, i) => id === 1000 + i)).toBe(true);
      // a [SEP] follows a document's last token whenever it is not at a sequence's end
      const total = seqs.reduce((n, s) => n + s.length, 0);
      expect(total).toBeLessThanOrEqual(seqs.length + (next - 1000) + docs.length);
    }
  });

  it('writes [CLS] d1 [SEP] d2 [SEP], splits a long document, skips empty ones, rejects specials in documents', () => {
    const { clsId: C, sepId: S } = special;
    expect(packSequences([Int32Array.of(7, 8, 9), Int32Array.of(5)], 5, special).map((s) => [...s])).toEqual([
      [C, 7, 8, 9, S],
      [C, 5, S],
    ]);
    expect(packSequences([Int32Array.of(1, 2), new Int32Array(0), Int32Array.of(3, 4, 5, 6, 7, 8)], 6, special).map((s) => [...s])).toEqual([
      [C, 1, 2, S, 3, 4],
      [C, 5, 6, 7, 8, S],
    ]);
    expect(packSequences([], 8, special)).toEqual([]);
    expect(() => packSequences([Int32Array.of(1, S, 2)], 8, special)).toThrow(/document 0 has special id 102 at position 1/);
    expect(() => packSequences([Int32Array.of(1)], 1, special)).toThrow(/maxLength must be an integer ≥ 2/);
  });

  it('packs real documents with almost no padding', () => {
    const docs = skillspanPieces(2000);
    const seqs = packSequences(docs, 128, special);
    const tokens = docs.reduce((n, d) => n + d.length, 0);
    const slots = seqs.length * 128;
    const used = seqs.reduce((n, s) => n + s.length, 0);
    expect(slots - used).toBeLessThan(128);
    // specials are [CLS] per sequence and ≤ one [SEP] per document
    expect(used - tokens).toBeLessThanOrEqual(seqs.length + docs.length);
  });
});

describe('maskTokens (BERT §3.1)', () => {
  it('chooses 15% of maskable positions; 80% [MASK] / 10% random / 10% kept; never specials or pads', () => {
    const rng = Rng.derive(1, 'mlm-test');
    let maskable = 0;
    const counts = { chosen: 0, mask: 0, random: 0, kept: 0 };
    const errors: string[] = [];
    randomBatch(2000, 128, 11).forEach((row, r) => {
      const { inputIds, labels } = maskTokens(row, base, rng);
      if (inputIds.length !== row.length || labels.length !== row.length) errors.push(`row ${r}: length changed`);
      for (let i = 0; i < row.length; i++) {
        const id = row[i] as number;
        const input = inputIds[i] as number;
        const isMaskable = id !== tokenizer.padId && !specials.has(id);
        if (isMaskable) maskable++;
        if (labels[i] === IGNORE_INDEX) {
          if (input !== id) errors.push(`row ${r} pos ${i}: not chosen but changed`);
          continue;
        }
        if (!isMaskable) errors.push(`row ${r} pos ${i}: special or pad ${id} chosen`);
        if (labels[i] !== id) errors.push(`row ${r} pos ${i}: label ${labels[i]} is not the original ${id}`);
        counts.chosen++;
        if (input === tokenizer.maskId) counts.mask++;
        else if (input === id) counts.kept++;
        else {
          counts.random++;
          if (specials.has(input) || input < 0 || input >= tokenizer.vocabSize) errors.push(`row ${r} pos ${i}: random token ${input} is special or out of range`);
        }
      }
    });
    expect(errors).toEqual([]);
    expect(maskable).toBeGreaterThan(200_000);
    expect(Math.abs(counts.chosen / maskable - 0.15)).toBeLessThan(0.002);
    expect(Math.abs(counts.mask / counts.chosen - 0.8)).toBeLessThan(0.01);
    expect(Math.abs(counts.random / counts.chosen - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(counts.kept / counts.chosen - 0.1)).toBeLessThan(0.01);
  });

  it('chooses at least one position when any is maskable, none when none is; p = 1 chooses all', () => {
    const { clsId: C, sepId: S } = special;
    const P = tokenizer.padId;
    const word = tokenizer.tokenToId('skill') as number;
    for (let seed = 0; seed < 50; seed++) {
      const one = maskTokens(Int32Array.of(C, word, S, P, P), base, new Rng(seed));
      expect([...one.labels]).toEqual([IGNORE_INDEX, word, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
    }
    const none = maskTokens(Int32Array.of(C, S, P, P), base, new Rng(0));
    expect([...none.labels]).toEqual([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
    expect([...none.inputIds]).toEqual([C, S, P, P]);
    const row = randomBatch(1, 64, 5)[0] as Int32Array;
    const all = maskTokens(row, { ...base, maskProbability: 1 }, new Rng(0));
    for (let i = 0; i < row.length; i++) expect(all.labels[i] !== IGNORE_INDEX).toBe(!specials.has(row[i] as number) && row[i] !== P);
  });

  it('is a pure function of the seed', () => {
    const rows = randomBatch(20, 64, 9);
    const run = (seed: number, wholeWord: boolean) => {
      const rng = new Rng(seed);
      return rows.map((r) => maskTokens(r, { ...base, wholeWord, isContinuation: (id) => table[id] === 1 }, rng));
    };
    for (const wholeWord of [false, true]) {
      expect(run(4, wholeWord)).toEqual(run(4, wholeWord));
      expect(run(4, wholeWord)).not.toEqual(run(5, wholeWord));
    }
  });

  it('rejects bad options with the fix', () => {
    const row = Int32Array.of(special.clsId, 2000, special.sepId);
    expect(() => maskTokens(row, { ...base, wholeWord: true }, new Rng(0))).toThrow(/wholeWord needs isContinuation/);
    expect(() => maskTokens(row, { ...base, maskProbability: 0 }, new Rng(0))).toThrow(/maskProbability must be in \(0, 1\]/);
    expect(() => maskTokens(row, { ...base, maskId: tokenizer.vocabSize }, new Rng(0))).toThrow(/maskId must be an id/);
  });
});

describe('maskTokens, whole words (DataCollatorForWholeWordMask)', () => {
  it("chooses every piece of a word or none, on real WordPiece output; ~15% of tokens", () => {
    const docs = skillspanPieces(4800);
    const seqs = packSequences(docs, 128, special);
    const options: MaskOptions = { ...base, wholeWord: true, isContinuation: (id) => table[id] === 1 };
    const rng = Rng.derive(2, 'wwm-test');
    let maskable = 0;
    let chosen = 0;
    let multiPieceWords = 0;
    let multiPieceChosen = 0;
    let specialChosen = 0;
    const split: string[] = [];
    const isPiece = Uint8Array.from({ length: tokenizer.vocabSize }, (_, id) => Number(/^##./.test(tokenizer.idToToken(id) ?? '')));
    for (let pass = 0; pass < 3; pass++) {
      for (const seq of seqs) {
        const { labels } = maskTokens(seq, options, rng);
        // words from the token strings (isPiece), independently of the implementation
        let i = 0;
        while (i < seq.length) {
          const id = seq[i] as number;
          if (specials.has(id)) {
            if (labels[i] !== IGNORE_INDEX) specialChosen++;
            i++;
            continue;
          }
          let end = i + 1;
          while (end < seq.length && isPiece[seq[end] as number] === 1) end++;
          const picked = Array.from(labels.subarray(i, end), (l) => l !== IGNORE_INDEX);
          if (!picked.every((p) => p === picked[0])) split.push(tokenizer.decode(seq.subarray(i, end)));
          maskable += end - i;
          if (picked[0] === true) chosen += end - i;
          if (end - i > 1) {
            multiPieceWords++;
            if (picked[0] === true) multiPieceChosen++;
          }
          i = end;
        }
      }
    }
    expect(split, 'words chosen in part').toEqual([]);
    expect(specialChosen).toBe(0);
    expect(multiPieceWords).toBeGreaterThan(10_000);
    expect(multiPieceChosen).toBeGreaterThan(500);
    // words that would overshoot the budget are skipped, so the rate is a little under 15%
    expect(chosen / maskable).toBeGreaterThan(0.14);
    expect(chosen / maskable).toBeLessThanOrEqual(0.151);
  });

  it('k = 1 still chooses a whole multi-piece word; the rest of a word split by packing is one word too', () => {
    const ids = tokenizer.pieceIds('pharmacovigilance');
    expect(ids.length).toBeGreaterThan(2);
    const options: MaskOptions = { ...base, wholeWord: true, isContinuation: (id) => table[id] === 1 };
    // [CLS] word [SEP], and [CLS] ##rest-of-word [SEP] as packing leaves it after a split
    for (const pieces of [ids, ids.subarray(1)]) {
      const seq = Int32Array.of(special.clsId, ...pieces, special.sepId);
      for (let seed = 0; seed < 20; seed++) {
        const { labels } = maskTokens(seq, options, new Rng(seed));
        // budget max(1, ⌊n·0.15 + u⌋) = 1 and no word fits: the first word is taken whole
        expect([...labels]).toEqual([IGNORE_INDEX, ...pieces, IGNORE_INDEX]);
      }
    }
  });
});
