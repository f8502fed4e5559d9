/**
 * The Skills Graph pipeline at run time: a posting in, its skills out, each with a score and the
 * evidence for it. The shape follows LinkedIn's skill extraction ("Extracting skills from content
 * to fuel the LinkedIn Skills Graph", LinkedIn Engineering, 2023):
 *
 *   1. sections   the posting is split into sections and sentences (./sections.ts); a skill's
 *                 score is weighted by its section (qualifications count most, the company blurb
 *                 least);
 *   2. taggers    per sentence, four rankings of the taxonomy: the taxonomy trie's matches
 *                 (src/data/skill-trie.ts), BM25 and character TF-IDF over the skills' labels,
 *                 and the two-tower model's cosine similarity against the skill embeddings of
 *                 the search index (the semantic tagger, which finds skills a sentence implies
 *                 without naming them);
 *   3. fusion     the four rankings fused by weighted reciprocal rank (src/eval/fusion.ts
 *                 `fuseParts`); a sentence emits every skill the trie matched, and up to `topK`
 *                 more from the fused ranking that the model scores at cosine ≥ `threshold`;
 *                 a skill's sentence score is its fused score over the largest possible one
 *                 (Σ_p w_p / (k + 1)), so 1 means first in every ranking;
 *   4. document   a skill's score is the best, over its mentions, of sentence score × section
 *                 weight; every mention is kept as provenance (tagger, section, character span);
 *   5. expansion  the skills graph (./graph.ts) adds broader, narrower and related skills of the
 *                 found ones at a decayed score, marked `expanded`.
 *
 * `signals` exposes step 2 alone: `kiln skills eval` ranks the whole taxonomy per sentence with
 * each tagger alone and with the fusion, through the same code.
 */
import { join } from 'node:path';

import type { TrieMatch } from '../data/skill-trie.js';
import { fuseParts, type FusionPart, type MultiFusedHit } from '../eval/fusion.js';
import { DEFAULT_LEXICAL_SETTINGS, type Candidates } from '../eval/lexical.js';
import { ExportedModel } from '../serve/exported-model.js';
import { LexicalWorkerPool } from '../serve/lexical-worker.js';
import { SearchIndex } from '../serve/search-index.js';
import { expandSkills, type SkillRelation } from './graph.js';
import { readSkillsFiles, SKILL_SIGNALS, type SkillSignal, type SkillsFiles, type SkillsSettings } from './model.js';
import { segmentPosting, type PostingSection, type SectionKind, type SegmentedPosting } from './sections.js';

/** Every tagger's ranking of the taxonomy for one sentence. */
export interface SentenceSignals {
  readonly rankings: Readonly<Record<SkillSignal, Candidates>>;
  readonly trieMatches: readonly TrieMatch[];
  /** Words in the sentence (the semantic tagger's minimum applies to it). */
  readonly words: number;
}

export type Mention =
  | { tagger: 'trie'; section: SectionKind; start: number; end: number; text: string; label: string; via: TrieMatch['source']; score: number }
  | { tagger: 'semantic'; section: SectionKind; start: number; end: number; similarity: number; score: number };

export interface ExtractedSkill {
  id: string;
  label: string;
  score: number;
  /** Found in the text (trie or semantic), or added from the graph. */
  kind: 'found' | 'expanded';
  mentions: Mention[];
  /** For an expanded skill: the found skill it came from, and the relation. */
  expandedFrom?: { id: string; label: string; relation: SkillRelation };
}

export interface ExtractedDocument {
  id: string;
  skills: ExtractedSkill[];
  sections: Array<Pick<PostingSection, 'kind' | 'heading' | 'start' | 'end'>>;
  sentences: number;
}

export interface ExtractOptions {
  /** Graph expansion on (default) or off. */
  expand: boolean;
  /** Overrides of the directory's settings. */
  threshold?: number;
  topK?: number;
}

/** Embeds sentences on the query side (default: the tagger's model directly; a server passes its micro-batcher). */
export type SentenceEmbedder = (sentences: readonly string[]) => Promise<Float32Array[]>;

export interface LoadTaggerOptions {
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** Whether onnxruntime's idle threads spin-wait between runs (ExportedModel's LoadOptions.spinning). */
  spinning?: boolean;
  /** Worker threads for each lexical ranker, BM25 and TF-IDF (default 1): a posting's sentences spread over them. */
  lexicalThreads?: number;
  /** Sentences per onnxruntime run (default SENTENCE_BATCH). */
  batchSize?: number;
}

/**
 * A posting's sentences run from 2 to 48 tokens. Sorted by length and run 16 at a time, they pad
 * far less than in one run of 64: measured on SkillSpan dev postings with the bert-tiny student,
 * 24 ms per posting against 44 (one onnxruntime thread).
 */
export const SENTENCE_BATCH = 16;

export class SkillTagger {
  private constructor(
    readonly files: SkillsFiles,
    readonly model: ExportedModel,
    readonly index: SearchIndex,
    private readonly bm25: LexicalWorkerPool,
  ) {}

  static async load(dir: string, options: LoadTaggerOptions = {}): Promise<SkillTagger> {
    const files = readSkillsFiles(dir);
    const model = await ExportedModel.load(join(files.dir, 'model'), { threads: options.threads, spinning: options.spinning, batchSize: options.batchSize ?? SENTENCE_BATCH });
    let index: SearchIndex | undefined;
    try {
      index = await SearchIndex.load(join(files.dir, 'index'), { threads: options.threads, lexicalThreads: options.lexicalThreads });
      if (index.manifest.hybrid.lexical !== 'tfidf_char') throw new Error(`${join(files.dir, 'index')}: its lexical ranker is ${index.manifest.hybrid.lexical}; expected tfidf_char (rebuild with \`kiln skills build\`)`);
      if (index.documents.length !== files.skills.length || index.documents.some((d, i) => d.id !== files.skills[i]!.id)) {
        throw new Error(`${join(files.dir, 'index')}: its documents are not skills.jsonl's skills in order; rebuild with \`kiln skills build\``);
      }
      const bm25 = await LexicalWorkerPool.start('bm25', files.skills, index.manifest.lexical ?? DEFAULT_LEXICAL_SETTINGS, options.lexicalThreads ?? 1);
      return new SkillTagger(files, model, index, bm25);
    } catch (error) {
      await index?.release();
      await model.release();
      throw error;
    }
  }

  get settings(): SkillsSettings {
    return this.files.manifest.settings;
  }

  /** Each tagger's top `window` skills for each sentence (window = the taxonomy's size gives full rankings). */
  async signals(
    sentences: readonly string[],
    window = this.settings.fusion.window,
    embed: SentenceEmbedder = (texts) => this.embedSentences(texts),
    options: { forExtraction?: Pick<ExtractOptions, 'threshold' | 'topK'> } = {},
  ): Promise<SentenceSignals[]> {
    if (sentences.length === 0) return [];
    const none: Candidates = { docs: new Int32Array(0), scores: new Float32Array(0) };
    const base = sentences.map((sentence) => {
      const trieMatches = this.files.trie.match(sentence);
      return { trieMatches, trie: trieRanking(trieMatches), words: sentence.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length };
    });
    const lexicalOf = (ranker: 'bm25' | 'tfidf_char', s: string): Promise<Candidates> => (ranker === 'bm25' ? this.bm25.candidates(s, window) : this.index.lexicalCandidates(s, window));
    const assemble = (dense: readonly Candidates[], lexical: ReadonlyArray<readonly [Candidates, Candidates]>): SentenceSignals[] =>
      base.map((b, i) => ({ rankings: { dense: dense[i]!, bm25: lexical[i]![0], tfidf_char: lexical[i]![1], trie: b.trie }, trieMatches: b.trieMatches, words: b.words }));

    if (options.forExtraction === undefined) {
      // Every ranking in full (evaluation): the lexical rankers run in worker threads while the
      // model embeds, so both cores are busy.
      const lexicalPending = Promise.all(sentences.map((s) => Promise.all([lexicalOf('bm25', s), lexicalOf('tfidf_char', s)] as const)));
      let dense: Candidates[];
      try {
        dense = await this.index.denseCandidates(await embed(sentences), window);
      } catch (error) {
        await lexicalPending.catch(() => undefined);
        throw error;
      }
      return assemble(dense, await lexicalPending);
    }

    // Extraction computes only the lexical rankings that can change what is emitted (they are
    // most of the cost per sentence), so its output is the same as with every ranking computed:
    //   - a lexical ranker of weight 0 changes no fused ranking;
    //   - a sentence emits only trie matches and skills the model scores at ≥ threshold, so a
    //     sentence with neither emits nothing whatever the lexical rankers say.
    const threshold = options.forExtraction.threshold ?? this.settings.semantic.threshold;
    const topK = options.forExtraction.topK ?? this.settings.semantic.topK;
    const { minWords } = this.settings.semantic;
    const weights = this.settings.fusion.weights;
    const lexicalPair = (s: string): Promise<readonly [Candidates, Candidates]> =>
      Promise.all([weights.bm25 === 0 ? none : lexicalOf('bm25', s), weights.tfidf_char === 0 ? none : lexicalOf('tfidf_char', s)] as const);
    // A sentence with a trie match needs its lexical rankings whatever the model says: those
    // start at once, beside the model; the rest wait for the model's scores.
    const early = sentences.map((s, i) => (base[i]!.trieMatches.length > 0 ? lexicalPair(s) : null));
    // A sentence too short for the semantic tagger and without a trie match emits nothing: it is
    // not even embedded (postings have many such lines: "Full-time", "Role:", "51–200 people").
    const embedded = sentences.flatMap((_, i) => (base[i]!.trieMatches.length > 0 || (base[i]!.words >= minWords && topK > 0) ? [i] : []));
    let dense: Candidates[];
    try {
      const found = embedded.length === 0 ? [] : await this.index.denseCandidates(await embed(embedded.map((i) => sentences[i]!)), window);
      dense = sentences.map(() => none);
      embedded.forEach((i, j) => (dense[i] = found[j]!));
    } catch (error) {
      await Promise.allSettled(early.filter((p) => p !== null));
      throw error;
    }
    const lexical = await Promise.all(
      sentences.map((s, i) => {
        const started = early[i];
        if (started !== null && started !== undefined) return started;
        const b = base[i]!;
        const semantic = b.words >= minWords && topK > 0 && dense[i]!.scores.length > 0 && dense[i]!.scores[0]! >= threshold;
        return semantic ? lexicalPair(s) : Promise.resolve([none, none] as const);
      }),
    );
    return assemble(dense, lexical);
  }

  /** The prompt type sentences are embedded with ('' when the model has none). */
  get sentenceType(): string | undefined {
    return this.index.manifest.queryType === '' ? undefined : this.index.manifest.queryType;
  }

  embedSentences(sentences: readonly string[]): Promise<Float32Array[]> {
    return this.model.embed(sentences, { side: 'query', inputType: this.sentenceType });
  }

  /** The fused ranking of one sentence's signals under the directory's fusion settings (or `weights`). */
  fuse(signals: SentenceSignals, weights: Readonly<Record<SkillSignal, number>> = this.settings.fusion.weights): MultiFusedHit[] {
    const { method, k, window } = this.settings.fusion;
    const parts: FusionPart[] = SKILL_SIGNALS.map((signal) => ({ candidates: topOf(signals.rankings[signal], window), weight: weights[signal] }));
    return fuseParts(parts, { method, k });
  }

  /** The skills each sentence emits, with its sentence score in (0, 1] (see the header, step 3). */
  sentenceSkills(signals: SentenceSignals, options: Pick<ExtractOptions, 'threshold' | 'topK'> = {}): Array<{ skill: number; score: number; trie: TrieMatch | null; similarity: number | null }> {
    const threshold = options.threshold ?? this.settings.semantic.threshold;
    const topK = signals.words < this.settings.semantic.minWords ? 0 : (options.topK ?? this.settings.semantic.topK);
    // Nothing to emit without a trie match or a skill the model scores at ≥ threshold: no fusion.
    const dense = signals.rankings.dense;
    if (signals.trieMatches.length === 0 && (topK === 0 || dense.scores.length === 0 || dense.scores[0]! < threshold)) return [];
    const { method, k, weights } = this.settings.fusion;
    const best = SKILL_SIGNALS.reduce((sum, s) => sum + (method === 'rrf' ? weights[s] / (k + 1) : weights[s]), 0);
    const fused = this.fuse(signals);
    const trieBySkill = new Map<number, TrieMatch>();
    for (const m of signals.trieMatches) for (const s of m.skills) if (!trieBySkill.has(s)) trieBySkill.set(s, m);
    const similarity = new Map<number, number>();
    dense.docs.forEach((doc, i) => similarity.set(doc, dense.scores[i]!));
    const out: Array<{ skill: number; score: number; trie: TrieMatch | null; similarity: number | null }> = [];
    let semantic = 0;
    for (const hit of fused) {
      const trie = trieBySkill.get(hit.doc) ?? null;
      const sim = similarity.get(hit.doc) ?? null;
      const bySemantic = sim !== null && sim >= threshold && semantic < topK;
      if (trie === null && !bySemantic) continue;
      if (trie === null) semantic++;
      out.push({ skill: hit.doc, score: best > 0 ? hit.score / best : 0, trie, similarity: sim });
    }
    return out;
  }

  /** Skills with provenance for each document (see the header). */
  async extract(
    documents: ReadonlyArray<{ id: string; text: string; segmented?: SegmentedPosting }>,
    options: ExtractOptions = { expand: true },
    embed?: SentenceEmbedder,
  ): Promise<ExtractedDocument[]> {
    // A caller that has segmented the text already (the server, to size the request) passes it on.
    const segmented = documents.map((d) => d.segmented ?? segmentPosting(d.text));
    const flat = segmented.flatMap((seg, doc) => seg.sentences.map((sentence) => ({ doc, sentence, section: seg.sections[sentence.section]! })));
    const signals = await this.signals(
      flat.map((f) => f.sentence.text),
      undefined,
      embed,
      { forExtraction: options },
    );
    const perDoc = documents.map(() => new Map<number, { score: number; mentions: Mention[] }>());
    flat.forEach(({ doc, sentence, section }, i) => {
      const weight = this.settings.sections[section.kind];
      for (const found of this.sentenceSkills(signals[i]!, options)) {
        const score = found.score * weight;
        const mention: Mention =
          found.trie !== null
            ? { tagger: 'trie', section: section.kind, start: sentence.start + found.trie.start, end: sentence.start + found.trie.end, text: found.trie.surface, label: found.trie.label, via: found.trie.source, score }
            : { tagger: 'semantic', section: section.kind, start: sentence.start, end: sentence.end, similarity: found.similarity!, score };
        const entry = perDoc[doc]!.get(found.skill);
        if (entry === undefined) perDoc[doc]!.set(found.skill, { score, mentions: [mention] });
        else {
          entry.score = Math.max(entry.score, score);
          entry.mentions.push(mention);
        }
      }
    });
    const skills = this.files.skills;
    return documents.map((d, doc) => {
      const found = perDoc[doc]!;
      const out: ExtractedSkill[] = [...found].map(([skill, { score, mentions }]) => ({ id: skills[skill]!.id, label: skills[skill]!.text, score, kind: 'found', mentions }));
      if (options.expand) {
        const { fromScore, ...expansion } = this.settings.expansion;
        const sources = new Map([...found].filter(([, { score }]) => score >= fromScore).map(([skill, { score }]) => [skill, score]));
        const alreadyFound = new Set(found.keys());
        for (const e of expandSkills(sources, this.files.graph, expansion)) {
          if (alreadyFound.has(e.skill)) continue;
          out.push({ id: skills[e.skill]!.id, label: skills[e.skill]!.text, score: e.score, kind: 'expanded', mentions: [], expandedFrom: { id: skills[e.from]!.id, label: skills[e.from]!.text, relation: e.relation } });
        }
      }
      out.sort((a, b) => b.score - a.score || (a.kind === b.kind ? a.label.localeCompare(b.label) : a.kind === 'found' ? -1 : 1));
      const seg = segmented[doc]!;
      return { id: d.id, skills: out, sections: seg.sections.map(({ kind, heading, start, end }) => ({ kind, heading, start, end })), sentences: seg.sentences.length };
    });
  }

  async release(): Promise<void> {
    await this.bm25.close();
    await this.index.release();
    await this.model.release();
  }
}

/** The trie's matches as a ranking: longer matches first, then earlier ones; a skill once. */
export function trieRanking(matches: readonly TrieMatch[]): Candidates {
  const order = matches.map((m, i) => ({ m, i })).sort((a, b) => b.m.tokens - a.m.tokens || a.i - b.i);
  const docs: number[] = [];
  const scores: number[] = [];
  const seen = new Set<number>();
  for (const { m } of order) {
    for (const skill of m.skills) {
      if (seen.has(skill)) continue;
      seen.add(skill);
      docs.push(skill);
      scores.push(m.tokens);
    }
  }
  return { docs: Int32Array.from(docs), scores: Float32Array.from(scores) };
}

function topOf(c: Candidates, n: number): Candidates {
  return c.docs.length <= n ? c : { docs: c.docs.subarray(0, n), scores: c.scores.subarray(0, n) };
}
