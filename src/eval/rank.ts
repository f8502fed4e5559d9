/**
 * Ranking a query's score row, without sorting it.
 *
 * Higher score = better. The rank of document r (1-based) in a row s_0..s_{D-1} is
 *
 *     rank(r) = 1 + #{ j : s_j > s_r } + #{ j < r : s_j == s_r }
 *
 * TIE RULE: tied documents are ordered by LOWER CORPUS INDEX FIRST — exactly the order of a
 * stable descending argsort (`np.argsort(-s, kind='stable')`). NaN scores rank after every
 * number (also -Infinity), and NaNs among themselves by index; -0 and +0 tie. This is the
 * deterministic "pessimistic for later documents" convention: a model that gives every document
 * the same score is ranked as if it returned the corpus in file order, rather than getting the
 * optimistic credit that "relevant first among ties" would give it.
 *
 * Why not sort: a query only needs the ranks of its few relevant documents, which counting gives
 * in O(D log R) (R = number of relevant documents; O(D) for the usual R = 1), versus O(D log D)
 * for an argsort of the whole row. `topK` keeps a size-k heap: O(D log k).
 *
 * Reference for the convention: NumPy `argsort(kind='stable')` documentation,
 * https://numpy.org/doc/stable/reference/generated/numpy.argsort.html (NaN sorts last).
 */

/** One query's scores over the corpus, one per document. */
export type ScoreRow = Float32Array | Float64Array;

/**
 * True when document `a` (score `scoreA`) ranks strictly before document `b` (score `scoreB`)
 * under the tie rule above. Exported so other code (and tests) can share the exact order.
 */
export function ranksBefore(scoreA: number, indexA: number, scoreB: number, indexB: number): boolean {
  if (scoreA > scoreB) return true;
  if (scoreA < scoreB) return false;
  // Equal, or at least one NaN (all comparisons false).
  const aIsNaN = scoreA !== scoreA;
  const bIsNaN = scoreB !== scoreB;
  if (aIsNaN !== bIsNaN) return bIsNaN; // the number beats the NaN
  return indexA < indexB; // true tie (or both NaN): lower corpus index first
}

function checkDocumentIndex(index: number, numDocs: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= numDocs) {
    throw new RangeError(`${what}: document index ${index} is not an integer in [0, ${numDocs})`);
  }
}

/**
 * 1-based rank of each relevant document in the full ranking of `scores`, in the order the
 * relevant documents were given. Throws on an out-of-range or repeated relevant index (a repeat
 * would silently count one document twice in recall's denominator).
 */
export function ranksOfRelevant(scores: ScoreRow, relevant: readonly number[]): number[] {
  const numDocs = scores.length;
  const numRelevant = relevant.length;
  if (numRelevant === 0) return [];
  const seen = new Set<number>();
  for (const index of relevant) {
    checkDocumentIndex(index, numDocs, 'ranksOfRelevant');
    if (seen.has(index)) throw new Error(`ranksOfRelevant: relevant document ${index} is listed twice`);
    seen.add(index);
  }

  if (numRelevant === 1) {
    // The common case (one gold document per query): a single counting pass.
    const target = relevant[0] as number;
    const targetScore = scores[target] as number;
    let better = 0;
    for (let j = 0; j < numDocs; j++) {
      if (ranksBefore(scores[j] as number, j, targetScore, target)) better++;
    }
    return [better + 1];
  }

  // General case. Order the relevant documents best-first; each document j then beats a suffix
  // of that list (everything from the first relevant document it ranks before). Binary-search
  // where the suffix starts and record it in a difference array; a prefix sum turns that into
  // "how many documents rank before relevant document number p". Relevant documents count each
  // other too, which is what the rank definition wants; nothing beats itself (strict order).
  const order = Array.from(relevant, (docIndex) => docIndex).sort((a, b) =>
    ranksBefore(scores[a] as number, a, scores[b] as number, b) ? -1 : 1,
  );
  const orderScores = Float64Array.from(order, (docIndex) => scores[docIndex] as number);
  const suffixStarts = new Int32Array(numRelevant + 1);
  for (let j = 0; j < numDocs; j++) {
    const score = scores[j] as number;
    // Smallest p such that j ranks before order[p] (numRelevant if none).
    let low = 0;
    let high = numRelevant;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (ranksBefore(score, j, orderScores[mid] as number, order[mid] as number)) high = mid;
      else low = mid + 1;
    }
    suffixStarts[low]!++;
  }
  const rankByDoc = new Map<number, number>();
  let beatenBy = 0;
  for (let p = 0; p < numRelevant; p++) {
    beatenBy += suffixStarts[p] as number;
    rankByDoc.set(order[p] as number, beatenBy + 1);
  }
  return relevant.map((docIndex) => rankByDoc.get(docIndex) as number);
}

/**
 * Indices of the `k` best documents, best first, under the same tie rule (so it equals
 * `argsort(-s, kind='stable')[:k]`). `k` larger than the corpus returns the whole ranking.
 */
export function topK(scores: ScoreRow, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topK: k must be a non-negative integer, got ${k}`);
  const size = Math.min(k, scores.length);
  if (size === 0) return new Int32Array(0);
  // Min-heap by rank order: heap[0] is the WORST of the current best `size`, so a newcomer only
  // has to beat it to get in.
  const heap = new Int32Array(size);
  const worseThan = (a: number, b: number): boolean =>
    ranksBefore(scores[b] as number, b, scores[a] as number, a);
  const siftDown = (start: number, length: number): void => {
    let parent = start;
    for (;;) {
      const left = 2 * parent + 1;
      if (left >= length) return;
      const right = left + 1;
      let worst = left;
      if (right < length && worseThan(heap[right] as number, heap[left] as number)) worst = right;
      if (!worseThan(heap[worst] as number, heap[parent] as number)) return;
      const swap = heap[parent] as number;
      heap[parent] = heap[worst] as number;
      heap[worst] = swap;
      parent = worst;
    }
  };
  for (let j = 0; j < size; j++) heap[j] = j;
  for (let start = (size >>> 1) - 1; start >= 0; start--) siftDown(start, size);
  for (let j = size; j < scores.length; j++) {
    // Fast reject, exact: every index in the heap is below j, so a score at or under the
    // heap's worst never gets in (a NaN on either side fails `<=` and takes the full test).
    if ((scores[j] as number) <= (scores[heap[0] as number] as number)) continue;
    if (worseThan(heap[0] as number, j)) {
      heap[0] = j;
      siftDown(0, size);
    }
  }
  // Heap-sort in place: repeatedly move the worst to the end, leaving best-first order.
  for (let end = size - 1; end > 0; end--) {
    const swap = heap[0] as number;
    heap[0] = heap[end] as number;
    heap[end] = swap;
    siftDown(0, end);
  }
  return heap;
}

/**
 * Per-query ranks for a row-major score matrix [Q × numDocs] (Q = relevantPerQuery.length):
 * `result[q]` = `ranksOfRelevant(row q, relevantPerQuery[q])`.
 */
export function ranksForQueries(
  scores: ScoreRow,
  numDocs: number,
  relevantPerQuery: readonly (readonly number[])[],
): number[][] {
  if (!Number.isInteger(numDocs) || numDocs < 0) {
    throw new RangeError(`ranksForQueries: numDocs must be a non-negative integer, got ${numDocs}`);
  }
  const numQueries = relevantPerQuery.length;
  if (scores.length !== numQueries * numDocs) {
    throw new RangeError(
      `ranksForQueries: score matrix has ${scores.length} entries, expected ${numQueries} queries × ${numDocs} documents = ${numQueries * numDocs}`,
    );
  }
  const ranks: number[][] = [];
  for (let q = 0; q < numQueries; q++) {
    const row = scores.subarray(q * numDocs, (q + 1) * numDocs);
    try {
      ranks.push(ranksOfRelevant(row, relevantPerQuery[q] as readonly number[]));
    } catch (error) {
      throw new Error(`ranksForQueries: query ${q}: ${(error as Error).message}`, { cause: error });
    }
  }
  return ranks;
}
