/**
 * The BERT-uncased WordPiece tokenizer: hand-checked cases (ids looked up in vocab.txt, id =
 * line - 1), truncation, caching, the tokenizer.json round trip, agreement with a port of the
 * original google-research/bert tokenization.py on real texts, and its speed.
 *
 * Note: the BERT README's "unaffable → un ##aff ##able" used an illustrative vocabulary; with
 * the real bert-base-uncased vocab the greedy longest match gives "una ##ffa ##ble" (as
 * Hugging Face's tokenizer does).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';

import { loadEscoConcepts } from '../../src/data/esco.js';
import { createContext } from '../../src/data/files.js';
import { RECIPES } from '../../src/data/recipes/index.js';
import { WordPieceTokenizer, readVocab } from '../../src/data/tokenizer.js';
import { REPO_ROOT, runPython } from '../helpers/python.js';
import { DATA_ROOT, tempRoot } from './root.js';

const VOCAB = join(DATA_ROOT, 'bert-vocab/vocab.txt');
const lines = readFileSync(VOCAB, 'utf8').split('\n');
/** Id of a token by its line in vocab.txt. */
const id = (token: string): number => {
  const i = lines.indexOf(token);
  if (i < 0) throw new Error(`${token} not in vocab.txt`);
  return i;
};
const tok = WordPieceTokenizer.fromVocabFile(VOCAB);
const ids = (...tokens: string[]): number[] => ['[CLS]', ...tokens, '[SEP]'].map(id);

describe('WordPieceTokenizer', () => {
  it('has the bert-base-uncased special ids and size', () => {
    expect(tok.vocabSize).toBe(30522);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual([0, 100, 101, 102, 103]);
  });

  it('hand-checked cases', () => {
    const enc = (text: string): number[] => Array.from(tok.encode(text, 512));
    expect(tok.tokenize('unaffable')).toEqual(['una', '##ffa', '##ble']);
    expect(enc('unaffable')).toEqual(ids('una', '##ffa', '##ble'));
    expect(enc('Café au lait')).toEqual(ids('cafe', 'au', 'lai', '##t')); // lower-cased, accent stripped
    expect(enc('São Paulo naïve')).toEqual(ids('sao', 'paulo', 'naive'));
    expect(enc('中文abc')).toEqual(ids('中', '文', 'abc')); // CJK characters split apart
    expect(enc('hello, world!')).toEqual(ids('hello', ',', 'world', '!')); // punctuation split
    expect(enc('sous-chef (m/f)')).toEqual(ids('sous', '-', 'chef', '(', 'm', '/', 'f', ')'));
    expect(enc('I ❤ tokenizers')).toEqual(ids('i', '[UNK]', 'token', '##izer', '##s')); // out-of-vocab character
    expect(enc('x'.repeat(101))).toEqual(ids('[UNK]')); // a word over 100 characters
    expect(enc('  \t\n ')).toEqual(ids());
    expect(tok.decode(tok.encode('Hello, World!', 16))).toBe('hello, world!');
  });

  it('truncates to maxLength, keeping [SEP] last', () => {
    const full = tok.encode('the quick brown fox jumps over the lazy dog', 512);
    expect(full.length).toBe(11);
    const cut = tok.encode('the quick brown fox jumps over the lazy dog', 5);
    expect(Array.from(cut)).toEqual(ids('the', 'quick', 'brown'));
    expect(Array.from(tok.encode('the quick', 2))).toEqual(ids());
    expect(() => tok.encode('x', 1)).toThrow(/maxLength must be an integer ≥ 2/);
    expect(tok.encodeBatch(['a', 'b c'], 8).map((a) => a.length)).toEqual([3, 4]);
  });

  it('caches per text and returns fresh arrays', () => {
    const t = WordPieceTokenizer.fromVocabFile(VOCAB);
    const a = t.encode('machine learning engineer', 16);
    a[1] = -1;
    const b = t.encode('machine learning engineer', 16);
    expect(b[1]).toBe(id('machine'));
    expect(t.cacheSize).toBe(1);
    t.clearCache();
    expect(t.cacheSize).toBe(0);
  });

  it('toJSON is a tokenizer.json that Tokenizers.js loads to the same encodings', () => {
    const json = tok.toJSON() as { model: { vocab: Record<string, number> }; normalizer: object; post_processor: { type: string } };
    expect(Object.keys(json.model.vocab).length).toBe(30522);
    expect(json.normalizer).toEqual({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true });
    expect(json.post_processor.type).toBe('TemplateProcessing');
    const again = new Tokenizer(JSON.parse(JSON.stringify(json)) as object, {});
    for (const text of ['Senior Data Engineer (m/w/d)', 'Café crème', '日本語']) expect(again.encode(text).ids).toEqual(Array.from(tok.encode(text, 512)));
  });

  it('rejects malformed vocabularies naming the file and line', () => {
    const root = tempRoot({ 'dup.txt': '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfoo\nfoo\n', 'nospecial.txt': 'a\nb\n' });
    expect(() => readVocab(join(root, 'dup.txt'))).toThrow(/dup\.txt:7: token "foo" repeats line 6/);
    expect(() => readVocab(join(root, 'nospecial.txt'))).toThrow(/nospecial\.txt: missing special token\(s\) \[PAD\], \[UNK\], \[CLS\], \[SEP\], \[MASK\]/);
    expect(() => WordPieceTokenizer.fromVocabFile(join(root, 'none.txt'))).toThrow(/cannot read vocabulary .*none\.txt/);
  });

  it('agrees with the original BERT tokenization on real texts, and is fast', async () => {
    const ctx = createContext({ dataRoot: DATA_ROOT, onBadRow: 'skip' });
    const skills = await loadEscoConcepts(ctx, 'skills');
    const sts = await RECIPES.stsb.load(ctx, { split: 'dev' });
    const spans = await RECIPES.skillspan.load(ctx, { split: 'dev' });
    const texts = [...new Set([...skills.flatMap((s) => [s.preferredLabel, ...s.altLabels, s.description]), ...sts.flatMap((p) => [p.a, p.b]), ...spans.map((s) => s.text)])];
    const fresh = WordPieceTokenizer.fromVocabFile(VOCAB);
    const t0 = performance.now();
    const ours = texts.map((t) => Array.from(fresh.encode(t, 100_000)));
    const seconds = (performance.now() - t0) / 1000;
    const rate = texts.length / seconds;
    console.log(`tokenizer: ${texts.length} unique texts in ${seconds.toFixed(2)} s = ${Math.round(rate)} texts/s (uncached)`);
    expect(rate).toBeGreaterThan(5000);

    const sample = texts.filter((_, i) => i % 10 === 0); // ~12k texts: keeps the Python run short
    const reference = JSON.parse(runPython([join(REPO_ROOT, 'test/data/bert_reference.py'), VOCAB], { input: JSON.stringify(sample) })) as number[][];
    const mismatches = sample.filter((t, i) => JSON.stringify(reference[i]) !== JSON.stringify(ours[i * 10]));
    expect(mismatches).toEqual([]);
  });
});
