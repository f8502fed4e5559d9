/**
 * ROC-AUC of real-valued scores against binary labels, as the normalised Mann–Whitney U
 * statistic:
 *
 *     AUC = (1 / (P·N)) Σ_{i ∈ pos} Σ_{j ∈ neg} ( [s_i > s_j] + ½ [s_i = s_j] )
 *
 * i.e. the probability that a random positive outscores a random negative, a tied pair counting
 * half. This is exactly the area under the ROC curve traced with tied scores as one threshold
 * step (a diagonal segment), which is what sklearn.metrics.roc_auc_score computes:
 * https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html
 * (Hanley & McNeil, Radiology 143(1), 1982, for the U-statistic identity).
 *
 * O(n log n): sort once by score, then walk groups of equal scores, crediting each positive in a
 * group with the negatives strictly below it plus half the negatives inside the group. Counts are
 * integers (halves for ties) so the sum is exact in float64 for any realistic n.
 *
 * Like sklearn, a single-class input is an error (the AUC is undefined), and NaN scores are
 * rejected rather than given an arbitrary place.
 */

/** A binary label: 1/true = positive, 0/false = negative. */
export type BinaryLabel = number | boolean;

export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<BinaryLabel>): number {
  const n = scores.length;
  if (labels.length !== n) {
    throw new RangeError(`roc_auc: ${n} scores but ${labels.length} labels`);
  }
  const isPositive = new Uint8Array(n);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (label === 1 || label === true) {
      isPositive[i] = 1;
      positives++;
    } else if (label !== 0 && label !== false) {
      throw new RangeError(`roc_auc: label ${String(label)} at index ${i} is not binary (0/1 or false/true)`);
    }
    const score = scores[i] as number;
    if (Number.isNaN(score)) throw new RangeError(`roc_auc: score at index ${i} is NaN`);
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) {
    throw new Error(
      `roc_auc: only one class present in labels (${positives} positive, ${negatives} negative); ROC AUC is undefined`,
    );
  }

  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Explicit comparison rather than subtraction: Infinity − Infinity would be NaN.
  order.sort((a, b) => compareNumbers(scores[a] as number, scores[b] as number));

  let pairsWon = 0; // Σ over positives of (#negatives below) + ½ (#negatives tied)
  let negativesBelow = 0;
  let groupStart = 0;
  while (groupStart < n) {
    const groupScore = scores[order[groupStart] as number] as number;
    let groupEnd = groupStart;
    let groupPositives = 0;
    while (groupEnd < n && (scores[order[groupEnd] as number] as number) === groupScore) {
      groupPositives += isPositive[order[groupEnd] as number] as number;
      groupEnd++;
    }
    const groupNegatives = groupEnd - groupStart - groupPositives;
    pairsWon += groupPositives * (negativesBelow + 0.5 * groupNegatives);
    negativesBelow += groupNegatives;
    groupStart = groupEnd;
  }
  return pairsWon / (positives * negatives);
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
