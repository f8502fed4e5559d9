/**
 * A skills model directory (`kiln skills build`): everything `kiln skills extract`, `kiln skills
 * eval` and `POST /skills` need, with no data root and no training code at run time.
 *
 *   skills.json    the manifest: format, the model's id, the taxonomy's counts, and the
 *                  pipeline's settings (fusion weights, the semantic tagger's threshold, section
 *                  weights, expansion)
 *   skills.jsonl   the taxonomy: one {"id": ESCO URI, "text": preferred label, "labels": alt
 *                  labels} per skill, in skills_en.csv order (a skill's index is its line)
 *   model/         the exported two-tower model (a copy of the `kiln export` directory)
 *   index/         a search index over skills.jsonl (`kiln index build`): the skill embeddings,
 *                  precomputed by `kiln embed`, and the lexical ranker's documents
 *   trie.json      the taxonomy trie (src/data/skill-trie.ts), built once here
 *   graph.json     the skills graph's edges (./graph.ts)
 *
 * The directory is assembled in a staging sibling and renamed into place whole, so a failed build
 * leaves an earlier one untouched. A rebuild with the same model reuses the old index's vectors.
 */
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { loadEscoConcepts } from '../data/esco.js';
import { buildTaxonomyTrie } from '../data/skill-labels.js';
import { SkillTrie } from '../data/skill-trie.js';
import { DataError, type RecipeContext } from '../data/types.js';
import type { FusionMethod } from '../eval/fusion.js';
import { buildSearchIndex } from '../serve/search-index.js';
import { buildDirectoryAtomic, writeFileAtomic } from '../util/atomic-write.js';
import { KILN_VERSION } from '../version.js';
import { DEFAULT_EXPANSION, loadSkillGraph, SkillGraph, type ExpansionOptions } from './graph.js';
import { DEFAULT_SECTION_WEIGHTS, type SectionKind } from './sections.js';

export const SKILLS_FORMAT = 'kiln-skills-model';
export const SKILLS_FORMAT_VERSION = 1;

/** The rankers the combined tagger fuses: the model, two lexical rankers and the trie. */
export type SkillSignal = 'dense' | 'bm25' | 'tfidf_char' | 'trie';
export const SKILL_SIGNALS = ['dense', 'bm25', 'tfidf_char', 'trie'] as const satisfies readonly SkillSignal[];

export interface SkillsSettings {
  /** How the signals' rankings combine (src/eval/fusion.ts `fuseParts`): weighted RRF over each signal's top `window`. */
  fusion: { method: FusionMethod; k: number; window: number; weights: Record<SkillSignal, number> };
  /**
   * What a sentence emits: at most `topK` skills of the fused ranking, each backed by a tagger:
   * a trie match, or the model's cosine similarity ≥ `threshold` (the semantic tagger). BM25 and
   * TF-IDF reorder, they never emit on their own (a shared word is not a skill). Sentences of
   * fewer than `minWords` words ("Full-time", "51–200 people") give the model too little
   * context: only the trie tags them.
   */
  semantic: { threshold: number; topK: number; minWords: number };
  sections: Record<SectionKind, number>;
  /** Graph expansion (./graph.ts) of the found skills scoring at least `fromScore`. */
  expansion: ExpansionOptions & { fromScore: number };
}

/**
 * The defaults. Fusion: plain RRF (k 60) with the dense model and the trie at full weight and each
 * word-level ranker at half, so that BM25 and TF-IDF together count as much as the model; the
 * threshold and top k were chosen on the TECH and HOUSE validation sets (RESULTS.md).
 */
export const DEFAULT_SKILLS_SETTINGS: SkillsSettings = {
  fusion: { method: 'rrf', k: 60, window: 100, weights: { dense: 1, bm25: 0.5, tfidf_char: 0.5, trie: 1 } },
  semantic: { threshold: 0.5, topK: 1, minWords: 4 },
  sections: { ...DEFAULT_SECTION_WEIGHTS },
  // Expanding every weak find multiplies the noise (a generic skill such as "troubleshoot" has
  // dozens of narrower skills): only confident finds are expanded, at most 3 neighbours each.
  expansion: { ...DEFAULT_EXPANSION, maxPerSkill: 3, fromScore: 0.5 },
};

export interface SkillsManifest {
  format: typeof SKILLS_FORMAT;
  formatVersion: number;
  kilnVersion: string;
  createdAt: string;
  modelId: string;
  taxonomy: { source: string; skills: number; trieLabels: number; edges: { broader: number; essential: number; optional: number } };
  settings: SkillsSettings;
}

export interface SkillEntry {
  id: string;
  text: string;
  labels: string[];
}

export interface BuildSkillsOptions {
  /** An exported two-tower model directory (`kiln export`). */
  model: string;
  out: string;
  ctx: RecipeContext;
  settings?: SkillsSettings;
  threads?: number;
  log?: (line: string) => void;
}

export class SkillsModelError extends Error {}

/** Builds a skills model directory (see the header). */
export async function buildSkillsModel(options: BuildSkillsOptions): Promise<{ out: string; manifest: SkillsManifest; seconds: number }> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = resolve(options.out);
  const modelDir = resolve(options.model);
  if (!existsSync(join(modelDir, 'model.json'))) {
    throw new SkillsModelError(`--model ${options.model}: no model.json; expected a two-tower model directory written by \`kiln export\``);
  }
  const manifest = await buildDirectoryAtomic(out, async (staging) => {
    const skills = await loadEscoConcepts(options.ctx, 'skills');
    const { trie } = await buildTaxonomyTrie(options.ctx);
    const { graph } = await loadSkillGraph(options.ctx, skills);
    log(`taxonomy: ${skills.length} ESCO skills, ${trie.size} trie labels, ${JSON.stringify(graph.edgeCounts())} graph edges`);

    cpSync(modelDir, join(staging, 'model'), { recursive: true });
    const entries: SkillEntry[] = skills.map((s) => ({ id: s.uri, text: s.preferredLabel, labels: [...s.altLabels] }));
    writeFileAtomic(join(staging, 'skills.jsonl'), entries.map((e) => Buffer.from(`${JSON.stringify(e)}\n`, 'utf8')));
    writeFileAtomic(join(staging, 'trie.json'), [Buffer.from(JSON.stringify(trie.toJSON()), 'utf8')]);
    writeFileAtomic(join(staging, 'graph.json'), [Buffer.from(JSON.stringify(graph.toJSON()), 'utf8')]);
    // An earlier build's index lends its vectors to this one (same model: every vector reused).
    const previousIndex = join(out, 'index');
    if (existsSync(join(previousIndex, 'vectors.arrow'))) cpSync(previousIndex, join(staging, 'index'), { recursive: true });
    const index = await buildSearchIndex({
      model: join(staging, 'model'),
      corpus: join(staging, 'skills.jsonl'),
      idField: 'id',
      textField: 'text',
      labelsField: 'labels',
      out: join(staging, 'index'),
      docType: pickType(join(staging, 'model'), 'skill'),
      queryType: pickType(join(staging, 'model'), 'sentence'),
      hybrid: { lexical: 'tfidf_char', method: 'rrf', weight: 0.5, k: 60, window: (options.settings ?? DEFAULT_SKILLS_SETTINGS).fusion.window },
      // The taxonomy is small enough to search exactly; HNSW would only lose recall here.
      annThreshold: Math.max(100_000, skills.length),
      threads: options.threads,
      log,
    });
    const built: SkillsManifest = {
      format: SKILLS_FORMAT,
      formatVersion: SKILLS_FORMAT_VERSION,
      kilnVersion: KILN_VERSION,
      createdAt: new Date().toISOString(),
      modelId: index.manifest.modelId,
      taxonomy: { source: 'ESCO v1.1.1 skills and skill relations; Stack Overflow tag synonyms', skills: skills.length, trieLabels: trie.size, edges: graph.edgeCounts() },
      settings: options.settings ?? DEFAULT_SKILLS_SETTINGS,
    };
    writeFileAtomic(join(staging, 'skills.json'), [Buffer.from(`${JSON.stringify(built, null, 2)}\n`, 'utf8')]);
    return built;
  });
  return { out, manifest, seconds: (performance.now() - started) / 1000 };
}

/** The model's prompt type `type` when it has one, else none (a model without prompts embeds texts as they are). */
function pickType(modelDir: string, type: string): string | undefined {
  const card = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as { prompts?: Record<string, string> };
  return card.prompts !== undefined && Object.hasOwn(card.prompts, type) ? type : undefined;
}

/** The parts of a skills directory that are plain data (the tagger adds the model and the index). */
export interface SkillsFiles {
  dir: string;
  manifest: SkillsManifest;
  skills: SkillEntry[];
  trie: SkillTrie;
  graph: SkillGraph;
}

/** Reads a skills directory's manifest, taxonomy, trie and graph, with errors naming the file. */
export function readSkillsFiles(dir: string): SkillsFiles {
  const root = resolve(dir);
  const readJson = (name: string): unknown => {
    const file = join(root, name);
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new DataError(file, undefined, `cannot read it (${(error as Error).message}); expected a skills model directory written by \`kiln skills build\``);
    }
  };
  const manifest = readJson('skills.json') as SkillsManifest;
  if (manifest.format !== SKILLS_FORMAT || manifest.formatVersion !== SKILLS_FORMAT_VERSION) {
    throw new DataError(join(root, 'skills.json'), undefined, `format ${JSON.stringify(manifest.format)} version ${String(manifest.formatVersion)}; expected ${SKILLS_FORMAT} version ${SKILLS_FORMAT_VERSION} (rebuild it with \`kiln skills build\`)`);
  }
  const skillsFile = join(root, 'skills.jsonl');
  let text: string;
  try {
    text = readFileSync(skillsFile, 'utf8');
  } catch (error) {
    throw new DataError(skillsFile, undefined, `cannot read it (${(error as Error).message}); expected a skills model directory written by \`kiln skills build\``);
  }
  const skills = text.split('\n').flatMap((line, i): SkillEntry[] => {
    if (line === '') return [];
    try {
      const entry = JSON.parse(line) as Partial<SkillEntry>;
      if (typeof entry.id !== 'string' || typeof entry.text !== 'string' || !Array.isArray(entry.labels)) throw new Error('expected {"id", "text", "labels"}');
      return [entry as SkillEntry];
    } catch (error) {
      throw new DataError(skillsFile, i + 1, `${(error as Error).message}; rebuild it with \`kiln skills build\``);
    }
  });
  const trie = SkillTrie.fromJSON(readJson('trie.json'), join(root, 'trie.json'));
  const graph = SkillGraph.fromJSON(readJson('graph.json'), join(root, 'graph.json'));
  if (skills.length !== manifest.taxonomy.skills || graph.numSkills !== skills.length) {
    throw new DataError(root, undefined, `skills.jsonl has ${skills.length} skills, skills.json says ${manifest.taxonomy.skills} and graph.json ${graph.numSkills}; rebuild it with \`kiln skills build\``);
  }
  return { dir: root, manifest, skills, trie, graph };
}

/** Rewrites the directory's settings (atomically; the rest of the manifest is kept). */
export function writeSkillsSettings(dir: string, settings: SkillsSettings): void {
  const files = readSkillsFiles(dir);
  const manifest: SkillsManifest = { ...files.manifest, settings };
  writeFileAtomic(join(files.dir, 'skills.json'), [Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8')]);
}
