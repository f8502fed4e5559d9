/** Command-line value checks shared by the benchmarks. */

/** `text` as an integer of at least `min`, or an Error naming the option `--name`. */
export function positiveInt(name: string, text: string | undefined, min = 1): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${String(text)}`);
  return v;
}
