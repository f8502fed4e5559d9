/**
 * From token id sequences to the tensors a model reads: padded int64 ids, the 0/1 attention
 * mask and, for text pairs, the segment ids. Shared by training strategies, evaluation and the
 * teacher, so every caller pads the same way (src/data's padBatch).
 */
import { fromTypedArray, tidy, type Tensor } from '../engine/index.js';
import { padBatch } from '../data/batch.js';

/** Pads token id sequences into int64 tensors [B, L]: ids and a 0/1 mask. `padTo` fixes L (else the longest). */
export function padToTensors(seqs: readonly Int32Array[], padId: number, device: 'cpu' | 'cuda' = 'cpu', padTo?: number): { inputIds: Tensor; attentionMask: Tensor } {
  const padded = padBatch(seqs, { padId, padTo: padTo ?? 'longest' });
  const shape = [padded.batchSize, padded.seqLen];
  return tidy(() => ({
    inputIds: fromTypedArray(padded.inputIds, { shape, device }).to('int64'),
    attentionMask: fromTypedArray(padded.attentionMask, { shape, device }).to('int64'),
  }));
}

/** Pads text pairs (ids and segment ids of equal length per pair) into int64 [B, L] ids, mask and segment ids. */
export function padPairsToTensors(
  pairs: ReadonlyArray<{ ids: Int32Array; typeIds: Int32Array }>,
  padId: number,
  device: 'cpu' | 'cuda' = 'cpu',
): { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor } {
  const padded = padBatch(pairs.map((p) => p.ids), { padId, padTo: 'longest' });
  const types = padBatch(pairs.map((p) => p.typeIds), { padId: 0, padTo: padded.seqLen });
  const shape = [padded.batchSize, padded.seqLen];
  return tidy(() => ({
    inputIds: fromTypedArray(padded.inputIds, { shape, device }).to('int64'),
    attentionMask: fromTypedArray(padded.attentionMask, { shape, device }).to('int64'),
    tokenTypeIds: fromTypedArray(types.inputIds, { shape, device }).to('int64'),
  }));
}
