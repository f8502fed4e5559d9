/**
 * Spearman's rank correlation ρ and Pearson's r.
 *
 *     pearson(x, y)  = Σ (x_i − x̄)(y_i − ȳ) / sqrt( Σ (x_i − x̄)² · Σ (y_i − ȳ)² )
 *     spearman(x, y) = pearson( avgrank(x), avgrank(y) )
 *
 * avgrank gives tied values the mean of the 1-based positions they occupy ("fractional" /
 * "average" ranking), so with ties this is the tie-corrected ρ, not the 1 − 6Σd²/(n(n²−1))
 * shortcut. Matches scipy.stats.spearmanr (which ranks with scipy.stats.rankdata(method=
 * 'average') and takes np.corrcoef) and scipy.stats.pearsonr:
 * https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html
 *
 * Like scipy, the result is NaN when either side is constant (zero variance: the correlation is
 * undefined), when any input is NaN (scipy's default nan_policy='propagate'), or when there are
 * fewer than 2 pairs. Means are subtracted before multiplying (two-pass) to avoid the
 * catastrophic cancellation of the one-pass Σxy − n·x̄ȳ form.
 */

function checkSameLength(metric: string, x: ArrayLike<number>, y: ArrayLike<number>): void {
  if (x.length !== y.length) throw new RangeError(`${metric}: inputs differ in length (${x.length} vs ${y.length})`);
}

function containsNaN(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i] as number)) return true;
  return false;
}

/** Pearson correlation coefficient in float64; NaN when undefined (see header). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkSameLength('pearson', x, y);
  const n = x.length;
  if (n < 2 || containsNaN(x) || containsNaN(y)) return NaN;
  let sumX = 0;
  let sumY = 0;
  for (let i = 0; i < n; i++) {
    sumX += x[i] as number;
    sumY += y[i] as number;
  }
  const meanX = sumX / n;
  const meanY = sumY / n;
  let covariance = 0;
  let varianceX = 0;
  let varianceY = 0;
  for (let i = 0; i < n; i++) {
    const dx = (x[i] as number) - meanX;
    const dy = (y[i] as number) - meanY;
    covariance += dx * dy;
    varianceX += dx * dx;
    varianceY += dy * dy;
  }
  if (varianceX === 0 || varianceY === 0) return NaN;
  const r = covariance / Math.sqrt(varianceX * varianceY);
  // Rounding can push |r| a hair past 1; scipy clips the same way.
  return Math.max(-1, Math.min(1, r));
}

/** 1-based ranks, ascending, with ties given their average position (scipy rankdata 'average'). */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Explicit comparison rather than subtraction: Infinity − Infinity would be NaN.
  order.sort((a, b) => compareNumbers(values[a] as number, values[b] as number));
  const ranks = new Float64Array(n);
  let groupStart = 0;
  while (groupStart < n) {
    const groupValue = values[order[groupStart] as number] as number;
    let groupEnd = groupStart + 1;
    while (groupEnd < n && (values[order[groupEnd] as number] as number) === groupValue) groupEnd++;
    // Positions groupStart+1 .. groupEnd (1-based) share their mean.
    const averageRank = (groupStart + 1 + groupEnd) / 2;
    for (let p = groupStart; p < groupEnd; p++) ranks[order[p] as number] = averageRank;
    groupStart = groupEnd;
  }
  return ranks;
}

/** Spearman's ρ with average ranks for ties; NaN when undefined (see header). */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkSameLength('spearman', x, y);
  if (x.length < 2 || containsNaN(x) || containsNaN(y)) return NaN;
  return pearson(averageRanks(x), averageRanks(y));
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
