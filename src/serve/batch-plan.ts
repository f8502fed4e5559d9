/**
 * How one model call's texts are cut into onnxruntime runs: sorted by length, then split where
 * padding would cost more than another run does.
 *
 * Why: a batch of texts is padded to its longest, so every row pays for the longest text's
 * tokens. Under load `kiln serve` hands the model 64 unrelated texts at once: job titles of 4 to
 * 16 tokens (median 6), one run over all of them pads every title to 16 and computes more than
 * twice the tokens it needs. More, shorter runs pay onnxruntime's fixed cost per run instead.
 *
 * Cost of a plan (in token positions): Σ over runs of (runOverheadTokens + rows × longest),
 * minimised exactly by dynamic programming over the sorted lengths (a run is a contiguous slice
 * of the sorted order; best[i] = min over the last run's start j of best[j] + cost(j, i); at
 * most maxRows per run). runOverheadTokens is what one run costs beyond its tokens, measured in
 * token positions (BENCHMARKS.md, "Serving": on bert-mini int8, one thread, 64 job titles).
 */

/** Row indices per run, in run order: each run a contiguous slice of the rows sorted by length (ties in input order). */
export function planRuns(lengths: readonly number[], maxRows: number, runOverheadTokens: number): number[][] {
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new Error(`maxRows must be an integer ≥ 1, got ${maxRows}`);
  if (!(runOverheadTokens >= 0)) throw new Error(`runOverheadTokens must be ≥ 0, got ${runOverheadTokens}`);
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const n = order.length;
  const best = new Float64Array(n + 1);
  const start = new Int32Array(n + 1);
  for (let end = 1; end <= n; end++) {
    // The run [j, end) is padded to its last (longest) row.
    const longest = lengths[order[end - 1]!]!;
    best[end] = Infinity;
    for (let j = Math.max(0, end - maxRows); j < end; j++) {
      const cost = best[j]! + runOverheadTokens + (end - j) * longest;
      if (cost < best[end]!) {
        best[end] = cost;
        start[end] = j;
      }
    }
  }
  const runs: number[][] = [];
  for (let end = n; end > 0; end = start[end]!) runs.push(order.slice(start[end]!, end));
  return runs.reverse();
}
