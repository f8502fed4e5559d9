/**
 * BERT-uncased WordPiece tokenisation, from a plain `vocab.txt` (bert-base-uncased's 30,522
 * tokens, Apache-2.0, google-research/bert; https://huggingface.co/bert-base-uncased/blob/main/vocab.txt).
 *
 * The tokenizer.json that Hugging Face ships for bert-base-uncased is rebuilt in memory from the
 * vocabulary and run by `@huggingface/tokenizers` (Tokenizers.js, pure JS):
 * - normalizer BertNormalizer {clean_text, handle_chinese_chars, strip_accents: null (follows
 *   lowercase, so accents are stripped), lowercase};
 * - pre-tokenizer BertPreTokenizer (split on whitespace and punctuation);
 * - model WordPiece {unk_token [UNK], continuing_subword_prefix ##, max_input_chars_per_word 100};
 * - post-processor TemplateProcessing `[CLS] $A [SEP]` (pair: `[CLS] $A [SEP] $B:1 [SEP]:1`);
 * - decoder WordPiece; the five special tokens as added tokens, as in the published file.
 * `toJSON()` returns that object, so an exported model can ship the exact tokenizer it was
 * trained with.
 *
 * A training run tokenises each unique text once: encodings are cached per text (without the
 * special tokens, untruncated), and `encode` adds [CLS]/[SEP] and truncates, keeping [SEP] last.
 */
import { readFileSync } from 'node:fs';

import { Tokenizer } from '@huggingface/tokenizers';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** A vocabulary object with no prototype, so a token such as "constructor" is an ordinary key. */
type Vocab = Record<string, number>;

/** Reads a one-token-per-line vocabulary (id = line number - 1); repeated tokens are an error naming both lines. */
export function readVocab(path: string): Vocab {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read vocabulary ${path}: ${(error as Error).message}`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const vocab: Vocab = Object.create(null) as Vocab;
  lines.forEach((raw, i) => {
    const token = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (token === '') throw new Error(`${path}:${i + 1}: empty line; expected one token per line`);
    const first = vocab[token];
    if (first !== undefined) throw new Error(`${path}:${i + 1}: token ${JSON.stringify(token)} repeats line ${first + 1}`);
    vocab[token] = i;
  });
  const missing = SPECIALS.filter((t) => vocab[t] === undefined);
  if (missing.length > 0) throw new Error(`${path}: missing special token(s) ${missing.join(', ')}; expected a BERT WordPiece vocabulary`);
  return vocab;
}

/** The tokenizer.json object of a BERT-uncased WordPiece tokenizer over `vocab`. */
export function bertUncasedTokenizerJson(vocab: Vocab): Record<string, unknown> {
  const id = (t: (typeof SPECIALS)[number]): number => vocab[t] as number;
  const special = (t: '[CLS]' | '[SEP]', typeId: number): object => ({ SpecialToken: { id: t, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((t) => ({ id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]', 0), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]', 0)],
      pair: [special('[CLS]', 0), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]', 0), { Sequence: { id: 'B', type_id: 1 } }, special('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [id('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [id('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

export interface TokenizerOptions {
  /** Cache each text's pieces (training re-encodes the same texts; a server sees unbounded new ones). Default true. */
  cache?: boolean;
}

export class WordPieceTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly unkId: number;
  readonly maskId: number;
  readonly #json: Record<string, unknown>;
  readonly #tokenizer: Tokenizer;
  readonly #cache = new Map<string, Int32Array>();
  readonly #cacheEnabled: boolean;

  private constructor(json: Record<string, unknown>, vocab: Vocab, options: TokenizerOptions) {
    this.#json = json;
    this.#tokenizer = new Tokenizer(this.#json, {});
    this.#cacheEnabled = options.cache ?? true;
    this.vocabSize = Object.keys(vocab).length;
    this.padId = vocab['[PAD]'] as number;
    this.clsId = vocab['[CLS]'] as number;
    this.sepId = vocab['[SEP]'] as number;
    this.unkId = vocab['[UNK]'] as number;
    this.maskId = vocab['[MASK]'] as number;
  }

  /** A tokenizer over a `vocab.txt` (one token per line). */
  static fromVocabFile(path: string, options: TokenizerOptions = {}): WordPieceTokenizer {
    const vocab = readVocab(path);
    return new WordPieceTokenizer(bertUncasedTokenizerJson(vocab), vocab, options);
  }

  /**
   * A tokenizer from a Hugging Face tokenizer.json with a WordPiece model (what `kiln export`
   * ships beside model.onnx). The file's normalizer and pre-tokenizer are used as written.
   */
  static fromTokenizerJson(path: string, options: TokenizerOptions = {}): WordPieceTokenizer {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`cannot read tokenizer ${path}: ${(error as Error).message}`);
    }
    const model = json['model'] as { type?: unknown; vocab?: unknown } | undefined;
    if (model?.type !== 'WordPiece' || typeof model.vocab !== 'object' || model.vocab === null) {
      throw new Error(`${path}: model.type is ${JSON.stringify(model?.type)}; expected a WordPiece tokenizer.json with model.vocab`);
    }
    const vocab: Vocab = Object.assign(Object.create(null) as Vocab, model.vocab);
    const missing = SPECIALS.filter((t) => typeof vocab[t] !== 'number');
    if (missing.length > 0) throw new Error(`${path}: model.vocab lacks special token(s) ${missing.join(', ')}; expected a BERT WordPiece vocabulary`);
    return new WordPieceTokenizer(json, vocab, options);
  }

  /** The tokenizer.json object (Hugging Face format), e.g. to ship next to an exported model. */
  toJSON(): object {
    return structuredClone(this.#json);
  }

  /** Word pieces of `text` without special tokens (for inspection). */
  tokenize(text: string): string[] {
    return this.#tokenizer.tokenize(text);
  }

  /** The id of a token, or undefined when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }

  /** Text from ids; special tokens are dropped unless `keepSpecial`. */
  decode(ids: ArrayLike<number>, options: { keepSpecial?: boolean } = {}): string {
    const list = Array.from(ids);
    if (list.length === 0) return '';
    return this.#tokenizer.decode(list, { skip_special_tokens: options.keepSpecial !== true });
  }

  /** Ids of `text` without [CLS]/[SEP], untruncated; cached per text. Do not modify the result. */
  pieceIds(text: string): Int32Array {
    let ids = this.#cache.get(text);
    if (ids === undefined) {
      const all = this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
      ids = Int32Array.from(all);
      if (this.#cacheEnabled) this.#cache.set(text, ids);
    }
    return ids;
  }

  /** `[CLS] pieces [SEP]`, truncated to `maxLength` (≥ 2) ids with [SEP] kept last. A new array. */
  encode(text: string, maxLength: number): Int32Array {
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`encode: maxLength must be an integer ≥ 2 (room for [CLS] and [SEP]), got ${maxLength}`);
    const pieces = this.pieceIds(text);
    const n = Math.min(pieces.length, maxLength - 2);
    const out = new Int32Array(n + 2);
    out[0] = this.clsId;
    out.set(n === pieces.length ? pieces : pieces.subarray(0, n), 1);
    out[n + 1] = this.sepId;
    return out;
  }

  encodeBatch(texts: readonly string[], maxLength: number): Int32Array[] {
    return texts.map((t) => this.encode(t, maxLength));
  }

  /**
   * A text pair for a cross-encoder: `[CLS] a [SEP] b [SEP]` with segment ids 0 for the first
   * part and 1 for `b [SEP]` (BERT's pair template). Over `maxLength` (≥ 3), pieces are removed
   * one at a time from the longer text, as Hugging Face's `longest_first` truncation does.
   */
  encodePair(first: string, second: string, maxLength: number): { ids: Int32Array; typeIds: Int32Array } {
    if (!Number.isInteger(maxLength) || maxLength < 3) throw new Error(`encodePair: maxLength must be an integer ≥ 3 (room for [CLS] and two [SEP]), got ${maxLength}`);
    const a = this.pieceIds(first);
    const b = this.pieceIds(second);
    let keepA = a.length;
    let keepB = b.length;
    while (keepA + keepB > maxLength - 3) {
      if (keepA > keepB) keepA--;
      else keepB--;
    }
    const ids = new Int32Array(keepA + keepB + 3);
    const typeIds = new Int32Array(ids.length);
    ids[0] = this.clsId;
    ids.set(a.subarray(0, keepA), 1);
    ids[keepA + 1] = this.sepId;
    ids.set(b.subarray(0, keepB), keepA + 2);
    ids[ids.length - 1] = this.sepId;
    typeIds.fill(1, keepA + 2);
    return { ids, typeIds };
  }

  /** Unique texts whose encodings are cached. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  clearCache(): void {
    this.#cache.clear();
  }
}
