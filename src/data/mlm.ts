/**
 * Masked-language-model data, in plain TypeScript (no libtorch): packing tokenised documents
 * into fixed-length sequences, and choosing which positions the model must predict.
 *
 * Masking follows BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
 * Transformers for Language Understanding", arXiv 1810.04805, §3.1 "Task #1: Masked LM" and
 * appendix A.1; google-research/bert `create_pretraining_data.py`):
 *
 *   maskable  M = positions whose id is not special and not padding,    n = |M|
 *   budget    k = max(1, ⌊n·p + u⌋),  u ~ U[0, 1),  p = maskProbability (0.15), k ≤ n
 *   chosen    C ⊂ M: k positions uniformly at random (token mode), or whole words (below)
 *   input     x'ᵢ = [MASK] with prob. 0.8, a random token with prob. 0.1, xᵢ with prob. 0.1   (i ∈ C)
 *             x'ᵢ = xᵢ                                                                        (i ∉ C)
 *   labels    yᵢ = xᵢ (i ∈ C),  yᵢ = -100 (i ∉ C; PyTorch cross_entropy's default ignore_index)
 *
 * - The budget is stochastically rounded, so the expected rate is exactly p (Google's script
 *   rounds to nearest, which over-masks short sequences: round(5·0.15) = 1 is 20%).
 * - k ≥ 1 whenever n ≥ 1: a sequence with no target contributes nothing to the loss but still
 *   costs a forward pass, and a batch of such sequences would divide the loss by zero. Google's
 *   script has the same max(1, ·); Hugging Face's DataCollatorForLanguageModeling (independent
 *   Bernoulli draws) does not.
 * - Random replacement tokens are drawn uniformly from the ids in [0, vocabSize) that are not
 *   special (`specialIds`, the mask id and the pad id), so the model is never shown a [CLS] or
 *   [unusedN] in the middle of text (`specialTokenIds` lists BERT's).
 * - Whole-word masking (`wholeWord`), as in Hugging Face's DataCollatorForWholeWordMask
 *   (transformers `data/data_collator.py`, `_whole_word_mask`) and Google's `--do_whole_word_mask`:
 *   a word is a maskable piece plus the '##' continuation pieces right after it; words are
 *   visited in random order and taken whole while they fit in the budget of k TOKENS (a word
 *   that would overshoot is skipped), so every piece of a word is chosen or none is. The
 *   80/10/10 replacement is still drawn per piece, as both implementations do. Skipping
 *   overshooting words leaves the rate slightly under p; if no word fits (k = 1 and every word
 *   has several pieces), the first word in the random order is taken anyway, to keep k ≥ 1.
 *
 * Packing: MLM has no sentence pairs, so documents are concatenated into full sequences
 * (RoBERTa's FULL-SENTENCES, Liu et al. 2019, arXiv 1907.11692 §4.2; Hugging Face's
 * run_mlm.py `group_texts`) instead of padding each short title to the sequence length.
 */
import type { Rng } from './rng.js';

/** Label of a position the loss ignores (PyTorch `cross_entropy`'s default `ignore_index`). */
export const IGNORE_INDEX = -100;

/**
 * Packs documents into sequences `[CLS] d1 [SEP] d2 [SEP] …` of at most `maxLength` ids.
 *
 * Documents are WordPiece ids WITHOUT special tokens, taken in order. Each sequence starts with
 * [CLS]; each document is followed by [SEP] when there is room. A document longer than the room
 * left is split: the sequence is filled to exactly `maxLength` and the rest of the document
 * continues after the next sequence's [CLS] (such a cut sequence, or one that ends exactly at a
 * document's last token, has no closing [SEP]). So every sequence but the last has exactly
 * `maxLength` ids, and every input token appears exactly once, in order. Empty documents add
 * nothing.
 *
 * @example
 * packSequences([Int32Array.of(7, 8, 9), Int32Array.of(5)], 5, { clsId: 101, sepId: 102 })
 * // → [Int32Array [101, 7, 8, 9, 102], Int32Array [101, 5, 102]]
 */
export function packSequences(docs: readonly Int32Array[], maxLength: number, special: { clsId: number; sepId: number }): Int32Array[] {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`packSequences: maxLength must be an integer ≥ 2 (room for [CLS] and one token), got ${maxLength}`);
  const { clsId, sepId } = special;
  const out: Int32Array[] = [];
  const buffer = new Int32Array(maxLength);
  let length = 0; // 0 = no sequence open
  const flush = (): void => {
    out.push(buffer.slice(0, length));
    length = 0;
  };
  docs.forEach((doc, d) => {
    // A [CLS]/[SEP] inside a document would read as a boundary that is not there.
    const bad = doc.findIndex((id) => id === clsId || id === sepId);
    if (bad >= 0) throw new Error(`packSequences: document ${d} has special id ${doc[bad]} at position ${bad}; pass pieces without [CLS]/[SEP] (tokenizer.pieceIds)`);
    let pos = 0;
    while (pos < doc.length) {
      if (length === 0) buffer[length++] = clsId;
      const room = maxLength - length;
      const rest = doc.length - pos;
      if (rest < room) {
        // The rest of the document and its [SEP] fit.
        buffer.set(doc.subarray(pos), length);
        length += rest;
        buffer[length++] = sepId;
        pos = doc.length;
        if (length === maxLength) flush();
      } else {
        // Fill the sequence; the document continues in the next one.
        buffer.set(doc.subarray(pos, pos + room), length);
        length += room;
        pos += room;
        flush();
      }
    }
  });
  if (length > 0) flush();
  return out;
}

export interface MaskOptions {
  /** Id of [MASK]. */
  maskId: number;
  /** Ids are in [0, vocabSize); random replacements are drawn from this range. */
  vocabSize: number;
  /** Ids never chosen and never drawn as replacements ([CLS], [SEP], [UNK], …; see `specialTokenIds`). */
  specialIds: ReadonlySet<number>;
  /** Id of [PAD]: never chosen, never drawn. */
  padId: number;
  /** Share of maskable positions to choose, in (0, 1]. Default 0.15 (BERT). */
  maskProbability?: number;
  /** Choose whole words (a piece and its following '##' pieces) instead of single pieces. Needs `isContinuation`. */
  wholeWord?: boolean;
  /** Whether an id is a '##' continuation piece, e.g. `(id) => table[id] === 1` with `continuationTable(tokenizer)`. */
  isContinuation?: (id: number) => boolean;
}

export interface MaskedSequence {
  /** The model input: the sequence with chosen positions replaced (80% [MASK], 10% random, 10% kept). */
  inputIds: Int32Array;
  /** The original id at chosen positions, `IGNORE_INDEX` (-100) elsewhere. */
  labels: Int32Array;
}

/**
 * BERT's masking of ONE sequence (see the header for the recipe). Padding and special ids are
 * skipped wherever they are, so a padded row works as is; but the budget and the
 * at-least-one guarantee are per call, so mask each row of a batch with its own call (draws
 * come from `rng` in order, so a batch is still a pure function of the seed).
 *
 * @example
 * const rng = Rng.derive(seed, 'mlm');
 * const table = continuationTable(tokenizer);
 * const { inputIds, labels } = maskTokens(seq, {
 *   maskId: tokenizer.maskId, padId: tokenizer.padId, vocabSize: tokenizer.vocabSize,
 *   specialIds: specialTokenIds(tokenizer), wholeWord: true, isContinuation: (id) => table[id] === 1,
 * }, rng);
 */
export function maskTokens(ids: Int32Array, options: MaskOptions, rng: Rng): MaskedSequence {
  const { maskId, vocabSize, specialIds, padId, maskProbability = 0.15, wholeWord = false, isContinuation } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`maskTokens: vocabSize must be a positive integer, got ${vocabSize}`);
  if (!Number.isInteger(maskId) || maskId < 0 || maskId >= vocabSize) throw new Error(`maskTokens: maskId must be an id in [0, ${vocabSize}), got ${maskId}`);
  if (!(maskProbability > 0 && maskProbability <= 1)) throw new Error(`maskTokens: maskProbability must be in (0, 1], got ${maskProbability}`);
  if (wholeWord && isContinuation === undefined) throw new Error("maskTokens: wholeWord needs isContinuation (which ids are '##' pieces); build it with continuationTable(tokenizer)");

  const maskable = (id: number): boolean => id !== padId && !specialIds.has(id);
  const candidates: number[] = [];
  for (let i = 0; i < ids.length; i++) if (maskable(ids[i] as number)) candidates.push(i);

  const inputIds = ids.slice();
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  const n = candidates.length;
  if (n === 0) return { inputIds, labels };
  const budget = Math.min(n, Math.max(1, Math.floor(n * maskProbability + rng.next())));

  const chosen = new Uint8Array(ids.length);
  if (wholeWord) chooseWholeWords(ids, candidates, budget, isContinuation as (id: number) => boolean, chosen, rng);
  else chooseTokens(candidates, budget, chosen, rng);

  // 80 / 10 / 10, decided per chosen position in position order.
  let drawable: number | undefined; // counted at the first random draw (a walk over specialIds)
  for (let i = 0; i < ids.length; i++) {
    if (chosen[i] === 0) continue;
    labels[i] = ids[i] as number;
    const r = rng.next();
    if (r < 0.8) inputIds[i] = maskId;
    else if (r < 0.9) {
      drawable ??= drawableCount(vocabSize, specialIds, maskId, padId);
      inputIds[i] = randomToken(vocabSize, specialIds, maskId, padId, drawable, rng);
    }
    // else: kept, so the model cannot assume an unmasked token is always correct (§3.1).
  }
  return { inputIds, labels };
}

/** Marks `budget` of the candidate positions: a partial Fisher–Yates shuffle. */
function chooseTokens(candidates: number[], budget: number, chosen: Uint8Array, rng: Rng): void {
  for (let i = 0; i < budget; i++) {
    const j = i + rng.int(candidates.length - i);
    const pick = candidates[j] as number;
    candidates[j] = candidates[i] as number;
    candidates[i] = pick;
    chosen[pick] = 1;
  }
}

/**
 * Marks whole words, visited in random order, while they fit in `budget` tokens (Hugging
 * Face's `_whole_word_mask`). A continuation piece with no maskable piece right before it
 * (after [CLS] where packing split a word) is a word of its own.
 */
function chooseWholeWords(ids: Int32Array, candidates: readonly number[], budget: number, isContinuation: (id: number) => boolean, chosen: Uint8Array, rng: Rng): void {
  const starts: number[] = [];
  const ends: number[] = [];
  for (const pos of candidates) {
    const last = ends.length - 1;
    if (last >= 0 && ends[last] === pos && isContinuation(ids[pos] as number)) ends[last] = pos + 1;
    else {
      starts.push(pos);
      ends.push(pos + 1);
    }
  }
  const order = rng.permutation(starts.length);
  let count = 0;
  for (const w of order) {
    if (count >= budget) break;
    const start = starts[w] as number;
    const end = ends[w] as number;
    if (count + (end - start) > budget) continue;
    chosen.fill(1, start, end);
    count += end - start;
  }
  if (count === 0) chosen.fill(1, starts[order[0] as number] as number, ends[order[0] as number] as number);
}

/** How many ids a random replacement can be: the vocabulary minus specials, [MASK] and [PAD]. */
function drawableCount(vocabSize: number, specialIds: ReadonlySet<number>, maskId: number, padId: number): number {
  const excluded = new Set<number>();
  for (const id of [maskId, padId, ...specialIds]) if (Number.isInteger(id) && id >= 0 && id < vocabSize) excluded.add(id);
  return vocabSize - excluded.size;
}

/** A uniform id among the drawable ones (rejection sampling: the excluded ids are ~3% of BERT's vocabulary). */
function randomToken(vocabSize: number, specialIds: ReadonlySet<number>, maskId: number, padId: number, drawable: number, rng: Rng): number {
  if (drawable <= 0) throw new Error(`maskTokens: no id in [0, ${vocabSize}) can replace a token (all are special, [MASK] or [PAD])`);
  for (;;) {
    const id = rng.int(vocabSize);
    if (id !== maskId && id !== padId && !specialIds.has(id)) return id;
  }
}

/** What the vocabulary helpers need of a tokenizer (`WordPieceTokenizer` has it). */
export interface VocabularyView {
  readonly vocabSize: number;
  idToToken(id: number): string | undefined;
}

/**
 * `table[id] === 1` when token `id` is a WordPiece continuation ('##…'): a lookup for
 * `maskTokens`'s `isContinuation`, computed once instead of per token.
 */
export function continuationTable(tokenizer: VocabularyView): Uint8Array {
  const table = new Uint8Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const token = tokenizer.idToToken(id);
    if (token !== undefined && token.length > 2 && token.startsWith('##')) table[id] = 1;
  }
  return table;
}

/**
 * Ids `maskTokens` should neither choose nor draw: every bracketed token of the vocabulary,
 * i.e. BERT's [PAD], [UNK], [CLS], [SEP], [MASK] and the 994 [unusedN] slots (never produced
 * by the tokenizer, so never worth showing as a random replacement). [UNK] positions are not
 * chosen either: predicting "unknown" teaches nothing (Hugging Face's collators skip every
 * special id too).
 */
export function specialTokenIds(tokenizer: VocabularyView): Set<number> {
  const ids = new Set<number>();
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const token = tokenizer.idToToken(id);
    if (token !== undefined && /^\[[^\]]+\]$/.test(token)) ids.add(id);
  }
  return ids;
}
