/**
 * The taxonomy trie tagger: finds the skills a text names verbatim (up to case, punctuation and
 * simple inflections), by matching it token by token against every label of the taxonomy.
 *
 * Labels. Each ESCO skill's preferred label and alternative labels (ESCO v1.1.1, European
 * Commission, CC BY 4.0), plus Stack Overflow tag synonyms (Stack Exchange data dump,
 * CC BY-SA 4.0): a tag that names an ESCO skill ("javascript" → JavaScript) lends that skill
 * every synonym the site merged into it ("js", "ecmascript"). This is LinkedIn's first tagger
 * ("Extracting skills from content to fuel the LinkedIn Skills Graph", LinkedIn Engineering,
 * 2023): a token-based trie over the taxonomy's surface forms, exact and cheap, missing the skills
 * a text implies without naming them (the semantic tagger's job).
 *
 * Normalisation, applied alike to labels and to text, so both meet in one form:
 *   - NFKC, lower case; words split on whitespace, hyphens, slashes and other punctuation, except
 *     the characters that make technology names ("c++", "c#", ".net", "node.js");
 *   - a possessive "'s" dropped; plurals folded by Harman's S-stemmer ("How effective is
 *     suffixing?", JASIS 42(1), 1991: -ies → -y, -es → -e, -s → ∅, not after u or s), then -ing
 *     and -ed stripped and a trailing e or doubled consonant dropped, so that "manage",
 *     "managing", "manages" and "managed" are one token. Words of three characters or fewer
 *     ("aws", "ios", "sql") and words with digits or symbols are left alone.
 *
 * Matching is leftmost-longest: from each token, the trie is walked as far as the text allows,
 * the longest label ending there is taken, and matching resumes after it (so "machine learning
 * engineering" is one match, not "machine" and "machine learning"). A label does not span
 * punctuation that separates phrases (commas, semicolons, colons, full stops, brackets): "data,
 * security" is two words of a list, not "data security". A label that is one English
 * function word ("go", "make", "it") would fire on nearly every sentence, so one-word labels on
 * the stop list are not indexed, and a label of one or two characters ("R", "C") must appear in
 * upper case in the text.
 *
 * The trie is built once and saved (`toJSON` / `SkillTrie.fromJSON`): a token vocabulary, and each
 * node's edges and outputs as flat integer arrays. Loading rebuilds one hash map from
 * (node, token) to child, which is all a match step reads.
 */
import { DataError } from './types.js';

/** Where a label came from. */
export type LabelSource = 'preferred' | 'alt' | 'stackoverflow';
export const LABEL_SOURCES = ['preferred', 'alt', 'stackoverflow'] as const satisfies readonly LabelSource[];

export interface TrieLabel {
  /** The label as written in the taxonomy. */
  readonly text: string;
  /** The skills it names (taxonomy indices; several concepts can share a label). */
  readonly skills: readonly number[];
  readonly source: LabelSource;
}

export interface TrieMatch {
  /** Character offsets into the matched text, end exclusive. */
  readonly start: number;
  readonly end: number;
  /** text.slice(start, end). */
  readonly surface: string;
  /** The label that matched (its first spelling, when labels share a normal form). */
  readonly label: string;
  readonly skills: readonly number[];
  readonly source: LabelSource;
  /** Tokens matched: longer matches are more specific. */
  readonly tokens: number;
}

/** A word of a text after normalisation, with its character offsets. */
export interface NormalisedToken {
  readonly token: string;
  /** The word in lower case with only its plural folded: one-word labels must match this form. */
  readonly plural: string;
  readonly start: number;
  readonly end: number;
  /** True when the word as written has no lower-case letter. */
  readonly upper: boolean;
  /** True when punctuation ("," ";" ":" "." brackets, quotes, bullets) separates it from the word before: no label spans that. */
  readonly breakBefore: boolean;
}

// Words: letters and digits, joined inside by '.' or an apostrophe ("node.js", "driver's"), with
// an optional leading '.' (".net") and trailing '+' / '#' ("c++", "c#", "f#").
const WORD = /\.?[\p{L}\p{N}]+(?:[.'’][\p{L}\p{N}]+)*[+#]*/gu;
const VOWEL = /[aeiouy]/;
const BREAK = /[,;:.!?()[\]{}"“”|•·]/;
const DOUBLED = /(bb|dd|gg|mm|nn|pp|rr|tt)$/;

/** English function words and generic verbs that are also one-word labels somewhere in the taxonomy. */
const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been being but by can could do does did for from go going had has have he her his i if in into is it its ' +
    'make may me more most must my no not of on one or our out over own same she should so some such than that the their them then ' +
    'there these they this those to too under up us use very was we were what when where which while who will with would you your ' +
    'work well new good all any also get set run see show take give help lead need plan test support care order process ' +
    // Job-ad words that are also a skill's synonym: CV (résumé, not computer vision), etc., e.g.
    'cv etc eg ie vc'
  )
    .split(' ')
    .map((w) => normaliseWord(w)),
);

/** A word in lower case with its plural folded (Harman's S-stemmer; see the header). */
export function pluralForm(word: string): string {
  let w = word.normalize('NFKC').toLowerCase().replace(/’/g, "'");
  if (w.endsWith("'s")) w = w.slice(0, -2);
  if (w.length <= 3 || !/^[a-z]+$/.test(w)) return w;
  // Harman's S-stemmer: the first rule that applies.
  if (w.endsWith('ies') && !w.endsWith('eies') && !w.endsWith('aies')) return `${w.slice(0, -3)}y`;
  if (w.endsWith('es') && !w.endsWith('aes') && !w.endsWith('ees') && !w.endsWith('oes')) return w.slice(0, -1);
  if (w.endsWith('s') && !w.endsWith('us') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

/** The full normal form of a word already in plural form: -ing, -ed and a final e folded too. */
function stemPlural(w: string): string {
  if (w.length <= 3 || !/^[a-z]+$/.test(w)) return w;
  // -ing / -ed, when a syllable is left: "managing" → "manag", "planned" → "plann" → "plan".
  for (const suffix of ['ing', 'ed']) {
    if (w.endsWith(suffix)) {
      const stem = w.slice(0, -suffix.length);
      if (stem.length >= 3 && VOWEL.test(stem)) return DOUBLED.test(stem) ? stem.slice(0, -1) : stem;
    }
  }
  return w.endsWith('e') ? w.slice(0, -1) : w;
}

/** The normal form of one word (see the header). */
export function normaliseWord(word: string): string {
  return stemPlural(pluralForm(word));
}

/** The text's words in normal form, with their offsets. */
export function normaliseTokens(text: string): NormalisedToken[] {
  const out: NormalisedToken[] = [];
  let previousEnd = 0;
  for (const m of text.matchAll(WORD)) {
    const surface = m[0];
    const plural = pluralForm(surface);
    const token = stemPlural(plural);
    const breakBefore = out.length > 0 && BREAK.test(text.slice(previousEnd, m.index));
    previousEnd = m.index + surface.length;
    out.push({ token, plural, start: m.index, end: previousEnd, upper: surface === surface.toUpperCase() && surface !== surface.toLowerCase(), breakBefore });
  }
  return out;
}

/** The saved form of a trie. */
export interface SkillTrieJSON {
  format: 'kiln-skill-trie';
  version: 1;
  /** Multi-word labels: the trie over word normal forms. */
  vocab: string[];
  /** Per node, its edges as [start, end) into edgeTokens/edgeChildren. Node 0 is the root. */
  edgeOffsets: number[];
  edgeTokens: number[];
  edgeChildren: number[];
  /** Per node, the index of the label ending there, or −1. */
  nodeLabel: number[];
  /** One-word labels: [plural form, label index]. */
  singles: Array<[string, number]>;
  labels: Array<{ text: string; skills: number[]; source: LabelSource; caseSensitive: boolean }>;
}

interface StoredLabel {
  text: string;
  skills: number[];
  source: LabelSource;
  /** A one- or two-character label ("R", "C"): the text must write it in upper case. */
  caseSensitive: boolean;
}

export interface SkillTrieOptions {
  /**
   * A one-word alternative label or Stack Overflow synonym is dropped when its word occurs in more
   * than this many of the taxonomy's labels: such a word ("data", "design", "security",
   * "report") is a theme of hundreds of skills, not the name of one. Preferred labels are the
   * concepts' own names and are always kept.
   */
  maxSynonymWordLabels: number;
}

/** 40: keeps "English" (35 labels) and "statistics" (24), drops "interview" (62) and "design" (1,075); see RESULTS.md. */
export const DEFAULT_TRIE_OPTIONS: SkillTrieOptions = Object.freeze({ maxSynonymWordLabels: 40 });

export class SkillTrie {
  private constructor(
    private readonly vocab: Map<string, number>,
    private readonly edges: Map<number, number>,
    private readonly nodeLabel: Int32Array,
    private readonly singles: Map<string, number>,
    private readonly labels: readonly StoredLabel[],
    private readonly vocabList: readonly string[],
    private readonly edgeList: ReadonlyArray<readonly [number, number, number]>,
  ) {}

  /** Number of labels indexed (after merging labels with one normal form). */
  get size(): number {
    return this.labels.length;
  }

  /**
   * Builds the trie. Labels with the same normal form merge: their skills are united, and the
   * first label's text and source are kept (so give preferred labels first). Multi-word labels
   * are keyed on the words' full normal forms; one-word labels on the plural form only, because
   * a lone word stripped of -ing or -ed collides with another word too easily ("accounting" with
   * "account", "boxing" with "box").
   */
  static build(input: Iterable<TrieLabel>, options: SkillTrieOptions = DEFAULT_TRIE_OPTIONS): SkillTrie {
    const all = [...input].map((label) => ({ label, tokens: normaliseTokens(label.text) })).filter((l) => l.tokens.length > 0);
    // How many distinct labels each word occurs in (the ambiguity of a one-word synonym).
    const wordLabels = new Map<string, number>();
    for (const key of new Set(all.map((l) => l.tokens.map((t) => t.token).join(' ')))) {
      for (const word of new Set(key.split(' '))) wordLabels.set(word, (wordLabels.get(word) ?? 0) + 1);
    }
    const vocab = new Map<string, number>();
    const vocabList: string[] = [];
    const children: Array<Map<number, number>> = [new Map()];
    const nodeLabel: number[] = [-1];
    const singles = new Map<string, number>();
    const labels: StoredLabel[] = [];
    const store = (existing: number | undefined, label: TrieLabel, caseSensitive: boolean): number => {
      if (existing !== undefined && existing >= 0) {
        const stored = labels[existing]!;
        for (const s of label.skills) if (!stored.skills.includes(s)) stored.skills.push(s);
        return existing;
      }
      labels.push({ text: label.text, skills: [...new Set(label.skills)], source: label.source, caseSensitive });
      return labels.length - 1;
    };
    for (const { label, tokens } of all) {
      if (tokens.length === 1) {
        const word = tokens[0]!;
        if (STOP_WORDS.has(word.token)) continue;
        if (label.source !== 'preferred' && (wordLabels.get(word.token) ?? 0) > options.maxSynonymWordLabels) continue;
        const caseSensitive = word.plural.replace(/[^\p{L}\p{N}]/gu, '').length <= 2;
        singles.set(word.plural, store(singles.get(word.plural), label, caseSensitive));
        continue;
      }
      let node = 0;
      for (const { token } of tokens) {
        let id = vocab.get(token);
        if (id === undefined) {
          id = vocabList.length;
          vocab.set(token, id);
          vocabList.push(token);
        }
        let next = children[node]!.get(id);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          nodeLabel.push(-1);
          children[node]!.set(id, next);
        }
        node = next;
      }
      nodeLabel[node] = store(nodeLabel[node], label, false);
    }
    for (const l of labels) l.skills.sort((a, b) => a - b);
    const edgeList: Array<[number, number, number]> = [];
    children.forEach((map, node) => {
      for (const [token, child] of [...map].sort((a, b) => a[0] - b[0])) edgeList.push([node, token, child]);
    });
    return SkillTrie.assemble(vocabList, edgeList, Int32Array.from(nodeLabel), singles, labels);
  }

  private static assemble(vocabList: string[], edgeList: Array<[number, number, number]>, nodeLabel: Int32Array, singles: Map<string, number>, labels: StoredLabel[]): SkillTrie {
    const vocab = new Map(vocabList.map((t, i) => [t, i]));
    const width = vocabList.length;
    const edges = new Map<number, number>();
    for (const [node, token, child] of edgeList) edges.set(node * width + token, child);
    return new SkillTrie(vocab, edges, nodeLabel, singles, labels, vocabList, edgeList);
  }

  /** Leftmost-longest matches of the taxonomy's labels in `text` (see the header). */
  match(text: string): TrieMatch[] {
    const tokens = normaliseTokens(text);
    const width = this.vocabList.length;
    const out: TrieMatch[] = [];
    let i = 0;
    while (i < tokens.length) {
      let best = -1;
      let bestEnd = i;
      const single = this.singles.get(tokens[i]!.plural);
      if (single !== undefined && (!this.labels[single]!.caseSensitive || tokens[i]!.upper)) {
        best = single;
        bestEnd = i + 1;
      }
      let node = 0;
      for (let j = i; j < tokens.length; j++) {
        if (j > i && tokens[j]!.breakBefore) break;
        const id = this.vocab.get(tokens[j]!.token);
        if (id === undefined) break;
        const next = this.edges.get(node * width + id);
        if (next === undefined) break;
        node = next;
        const label = this.nodeLabel[node]!;
        if (label >= 0) {
          best = label;
          bestEnd = j + 1;
        }
      }
      if (best < 0) {
        i++;
        continue;
      }
      const label = this.labels[best]!;
      const start = tokens[i]!.start;
      const end = tokens[bestEnd - 1]!.end;
      out.push({ start, end, surface: text.slice(start, end), label: label.text, skills: label.skills, source: label.source, tokens: bestEnd - i });
      i = bestEnd;
    }
    return out;
  }

  toJSON(): SkillTrieJSON {
    const nodes = this.nodeLabel.length;
    const edgeOffsets = new Array<number>(nodes + 1).fill(0);
    for (const [node] of this.edgeList) edgeOffsets[node + 1]!++;
    for (let n = 0; n < nodes; n++) edgeOffsets[n + 1]! += edgeOffsets[n]!;
    return {
      format: 'kiln-skill-trie',
      version: 1,
      vocab: [...this.vocabList],
      edgeOffsets,
      edgeTokens: this.edgeList.map((e) => e[1]),
      edgeChildren: this.edgeList.map((e) => e[2]),
      nodeLabel: Array.from(this.nodeLabel),
      singles: [...this.singles],
      labels: this.labels.map((l) => ({ ...l, skills: [...l.skills] })),
    };
  }

  /** The trie saved by `toJSON`; `source` names the file in errors. */
  static fromJSON(value: unknown, source: string): SkillTrie {
    const fail = (what: string): never => {
      throw new DataError(source, undefined, `${what}; expected a skill trie written by \`kiln skills build\` (format kiln-skill-trie version 1)`);
    };
    if (value === null || typeof value !== 'object') return fail('not a JSON object');
    const v = value as Partial<SkillTrieJSON>;
    if (v.format !== 'kiln-skill-trie' || v.version !== 1) return fail(`format ${JSON.stringify(v.format)} version ${JSON.stringify(v.version)}`);
    const { vocab, edgeOffsets, edgeTokens, edgeChildren, nodeLabel, singles, labels } = v;
    const ints = (a: unknown): a is number[] => Array.isArray(a) && a.every((x) => Number.isInteger(x));
    if (!Array.isArray(vocab) || !vocab.every((t) => typeof t === 'string')) return fail('"vocab" is not an array of strings');
    if (!ints(edgeOffsets) || !ints(edgeTokens) || !ints(edgeChildren) || !ints(nodeLabel)) return fail('the node arrays are not integer arrays');
    if (!Array.isArray(labels)) return fail('"labels" is not an array');
    if (!Array.isArray(singles) || !singles.every((e) => Array.isArray(e) && typeof e[0] === 'string' && Number.isInteger(e[1]) && e[1] >= 0 && e[1] < labels.length)) {
      return fail('"singles" is not an array of [word, label index] pairs');
    }
    const nodes = nodeLabel.length;
    if (edgeOffsets.length !== nodes + 1 || edgeTokens.length !== edgeChildren.length || edgeOffsets[nodes] !== edgeTokens.length) return fail('the node arrays disagree in length');
    const edgeList: Array<[number, number, number]> = [];
    for (let n = 0; n < nodes; n++) {
      for (let e = edgeOffsets[n]!; e < edgeOffsets[n + 1]!; e++) {
        const token = edgeTokens[e]!;
        const child = edgeChildren[e]!;
        if (token < 0 || token >= vocab.length || child <= 0 || child >= nodes) return fail(`edge ${e} points outside the vocabulary or the nodes`);
        edgeList.push([n, token, child]);
      }
    }
    for (const l of nodeLabel) if (l < -1 || l >= labels.length) return fail(`a node names label ${l} of ${labels.length}`);
    const stored = labels.map((l, i): StoredLabel => {
      if (typeof l?.text !== 'string' || !ints(l.skills) || !(LABEL_SOURCES as readonly string[]).includes(l.source) || typeof l.caseSensitive !== 'boolean') return fail(`label ${i} is malformed`);
      return { text: l.text, skills: [...l.skills], source: l.source, caseSensitive: l.caseSensitive };
    });
    return SkillTrie.assemble(vocab, edgeList, Int32Array.from(nodeLabel), new Map(singles), stored);
  }
}
