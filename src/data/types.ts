/**
 * Shared types of Kiln's data layer: what recipes produce (training pairs, retrieval splits,
 * scored pairs, span-annotated texts), how bad input rows are handled, and the error type
 * that names the offending file and line.
 *
 * Every example carries a `source` ('file:line', the file relative to the data root) so a
 * surprising example can be traced back to the exact row of the public file it came from.
 */

/** A training pair: a query text and its positive document; `group` is the concept id (e.g. ESCO URI) used to mask false negatives in a batch. */
export interface PairExample {
  query: string;
  doc: string;
  group: string;
  /** Input type of the query ('title', 'skill', 'sentence', 'description', …): picks the prompt template. */
  queryType: string;
  /** Input type of the document ('occupation', 'skill', …). */
  docType: string;
  /** 'file:line' of the row the pair came from. */
  source: string;
  /**
   * Explicit negatives of the query (triplets): scored against every query of the batch beside
   * the in-batch documents, as sentence-transformers' MultipleNegativesRankingLoss does.
   */
  negatives?: readonly string[];
  /**
   * The pair's label in [0, 1] (scored pairs): the target of the positive column for losses that
   * take graded targets (bce); absent means 1, a true positive.
   */
  label?: number;
}

/**
 * One document of a retrieval corpus: `text` is what the model embeds (a taxonomy concept's
 * preferred label); `labels` are the concept's other names (ESCO alternative labels), which
 * lexical rankers may match as well (src/eval/lexical.ts).
 */
export interface CorpusDocument {
  id: string;
  text: string;
  labels?: readonly string[];
}

/** A retrieval split: queries ranked against a whole corpus. */
export interface RetrievalSplit {
  name: string;
  queryType: string;
  docType: string;
  queries: { id: string; text: string; relevant: number[] /* corpus indices */; source: string }[];
  corpus: CorpusDocument[];
  /** labelled (query, doc) pairs for ROC-AUC: each query's positive(s) and an equal number of seeded random negatives */
  labelledPairs: { query: number; doc: number; label: 0 | 1 }[];
}

/** Two texts and a graded similarity (STS-B: 0..5 unless the recipe rescales it). */
export interface ScoredTextPair {
  a: string;
  b: string;
  score: number;
  source: string;
  /** Input type of text a (its prompt) and of text b; absent: 'sentence', as STS sets are. */
  aType?: string;
  bType?: string;
  /** The model side text b is embedded with: 'query' for symmetric sets (STS), 'doc' for query–document pairs. Default 'query'. */
  bSide?: 'query' | 'doc';
}

export interface TextExample {
  text: string;
  source: string;
}

/** A labelled span over a tokenised sentence (SkillSpan). */
export interface TextSpan {
  kind: 'skill' | 'knowledge';
  /** First token of the span. */
  startToken: number;
  /** One past the last token of the span. */
  endToken: number;
  /** Character offsets into `text` (the tokens joined by single spaces); `end` is exclusive. */
  start: number;
  end: number;
  /** `text.slice(start, end)`. */
  text: string;
}

/** A sentence with its token list and skill/knowledge spans. */
export interface SpanExample extends TextExample {
  /** The original tokens; `text` is `tokens.join(' ')`. */
  tokens: string[];
  spans: TextSpan[];
  /** The SkillSpan subset the sentence belongs to ('tech' or 'house'). */
  subset: string;
}

export type BadRowPolicy = 'fail' | 'skip';

/**
 * An input row (or file) that does not have the expected shape. The message always starts
 * with `file:line:` (or `file:` when no line applies) and says what was expected.
 */
export class DataError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly reason: string;

  constructor(file: string, line: number | undefined, reason: string) {
    super(`${line === undefined ? file : `${file}:${line}`}: ${reason}`);
    this.name = 'DataError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** Collects the rows a recipe skipped under `onBadRow: 'skip'`: a count per file and the first few messages. */
export class BadRowReport {
  /** Messages kept per file (the count keeps going past it). */
  readonly maxMessagesPerFile: number;
  readonly #counts = new Map<string, number>();
  readonly #messages = new Map<string, string[]>();

  constructor(maxMessagesPerFile = 5) {
    this.maxMessagesPerFile = maxMessagesPerFile;
  }

  add(error: DataError): void {
    this.#counts.set(error.file, (this.#counts.get(error.file) ?? 0) + 1);
    const kept = this.#messages.get(error.file) ?? [];
    if (kept.length < this.maxMessagesPerFile) kept.push(error.message);
    this.#messages.set(error.file, kept);
  }

  /** Skipped rows in all files. */
  get total(): number {
    let n = 0;
    for (const c of this.#counts.values()) n += c;
    return n;
  }

  /** Skipped rows per file. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** The first messages of each file, in the order they were met. */
  messages(file?: string): string[] {
    if (file !== undefined) return [...(this.#messages.get(file) ?? [])];
    return [...this.#messages.values()].flat();
  }

  /** One line per file, e.g. "skipped 1 bad row(s) in titles.csv; first: titles.csv:8125: …". */
  summary(): string {
    if (this.#counts.size === 0) return 'no bad rows';
    return [...this.#counts]
      .map(([file, n]) => `skipped ${n} bad row(s) in ${file}; first: ${this.#messages.get(file)?.[0] ?? ''}`)
      .join('\n');
  }

  toJSON(): { total: number; counts: Record<string, number>; messages: string[] } {
    return { total: this.total, counts: this.counts(), messages: this.messages() };
  }
}

export interface RecipeContext {
  dataRoot: string;
  onBadRow: BadRowPolicy;
  seed: number;
  /** collects skipped bad rows: */
  report: BadRowReport;
  /** Absolute paths of the data files read (the run summary records a hash of each). */
  filesRead?: Set<string>;
}
