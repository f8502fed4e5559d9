/**
 * Recipe `domain-corpus` (corpus): plain in-domain text for masked-language-model pretraining
 * (BERT's MLM, Devlin et al. 2019, arXiv 1810.04805 §3.1), from the labour-market files under
 * the data root:
 * - ESCO v1.1.1 skills and occupations (European Commission, CC BY 4.0; "This service uses the
 *   ESCO classification of the European Commission."): every concept's preferred label,
 *   alternative labels, description and definition (`skills_en.csv`, `occupations_en.csv`);
 * - O*NET 29.2 (O*NET Resource Center, USDOL/ETA, CC BY 4.0): occupation titles and
 *   descriptions (`Occupation Data.txt`), task statements (`Task Statements.txt`), detailed
 *   work activity titles (`DWA Reference.txt`) and alternate titles (`Alternate Titles.txt`);
 * - SkillSpan (Zhang et al. 2022, MIT): the TRAINING sentences only (`skillspan/json/train.json`).
 *
 * What stays out, and why:
 * - Every validation and test split. The JobBERT titles file is the job-title validation set
 *   and the skill-extraction annotation files are validation/test sets, so neither is read as
 *   corpus text; SkillSpan dev/test are never opened.
 * - Every text equal, under `normalizeForOverlap` (NFKC, lower case, whitespace collapsed), to
 *   an evaluation query. Some TECH/HOUSE sentences recur verbatim in SkillSpan train postings
 *   (boilerplate lines), and many vacancy titles equal an ESCO or O*NET label; pretraining on
 *   them would let the encoder memorise the evaluation inputs. The held-out set is read from
 *   every skill-extraction annotation file (all subsets, all splits) and every JobBERT titles
 *   file that exists on disk, ALL of their rows: that is a superset of the recipes' queries
 *   (the skill-extraction protocol drops sentences without an ESCO label, and the JobBERT
 *   recipe rejects a title whose URI does not resolve), because a sentence the protocol set
 *   aside is still a test-set sentence. Missing evaluation files are not an error (test splits
 *   are withheld from the shared data root); `loadDomainCorpus` lists the files it used.
 * - ESCO hidden labels (misspellings and search terms, noise for a language model), texts
 *   shorter than `min_chars`, and texts with nothing to learn from: SkillSpan's
 *   de-identification placeholders (`<ORGANIZATION>`, `<LOCATION>`, …) replace names, and 145
 *   training sentences are nothing but placeholders and punctuation. Placeholders inside
 *   other sentences are kept as written (they are how those postings read).
 *
 * Texts are whitespace-cleaned and de-duplicated under the same normalisation (the tokenizer
 * is uncased, so case variants are the same input): the first occurrence is kept. The order is
 * deterministic: sources in the order above, rows in file order, each ESCO concept's texts
 * together (label, alternative labels, description, definition). Shuffling is the trainer's job.
 *
 * Shared data root, defaults: 212,813 texts, about 1.74 M WordPiece tokens. Kept per source:
 * ESCO skills 112,186, ESCO occupations 34,095, O*NET occupations 2,005, task statements
 * 17,524, DWA titles 2,080, alternate titles 41,050, SkillSpan train 3,873. Dropped as
 * evaluation queries: 3,862 (2,425 O*NET alternate titles, 1,335 ESCO occupation labels, 49
 * ESCO skill labels, 2 O*NET titles, 51 SkillSpan train sentences), mostly labels equal to a
 * JobBERT vacancy title; the SkillSpan ones are TECH/HOUSE sentences.
 *
 * @example
 * const { texts, stats } = await loadDomainCorpus(createContext({ dataRoot }), { include_onet_alternate_titles: false });
 * // texts[0] → { text: 'manage musical staff', source: 'esco-v1.1.1/skills_en.csv:2' }
 * // stats.droppedAsEvaluation → how many texts were evaluation queries
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { z } from 'zod';

import { ESCO_FILES, loadEscoConcepts } from '../esco.js';
import { forEachRow, readCsv, readTsv, requireFiles, type DatasetKey } from '../files.js';
import type { RecipeContext, TextExample } from '../types.js';
import { JOBBERT_FILES } from './jobbert-titles.js';
import { ONET_FILES } from './onet-titles.js';
import { cleanText, defineRecipe, normalizeForOverlap } from './recipe.js';
import { skillExtractionFile } from './skill-extraction.js';
import { skillspan } from './skillspan.js';

/** The corpus's sources, in output order. */
export const DOMAIN_CORPUS_SOURCES = [
  'esco_skills',
  'esco_occupations',
  'onet_occupations',
  'onet_tasks',
  'onet_dwas',
  'onet_alternate_titles',
  'skillspan_train',
] as const;
export type DomainCorpusSource = (typeof DOMAIN_CORPUS_SOURCES)[number];

const DWA_FILE = 'onet-29.2/DWA Reference.txt';
const SKILLSPAN_TRAIN = 'skillspan/json/train.json';

/** Files a source reads, relative to the data root (checked before anything is parsed). */
const SOURCE_FILES: Record<DomainCorpusSource, { dataset: DatasetKey; files: readonly string[] }> = {
  esco_skills: { dataset: 'esco', files: [ESCO_FILES.skills] },
  esco_occupations: { dataset: 'esco', files: [ESCO_FILES.occupations] },
  onet_occupations: { dataset: 'onet', files: [ONET_FILES.occupations] },
  onet_tasks: { dataset: 'onet', files: [ONET_FILES.tasks] },
  onet_dwas: { dataset: 'onet', files: [DWA_FILE] },
  onet_alternate_titles: { dataset: 'onet', files: [ONET_FILES.alternateTitles] },
  skillspan_train: { dataset: 'skillspan', files: [SKILLSPAN_TRAIN] },
};

/**
 * The evaluation files whose rows must not appear in the corpus: file and the column holding
 * the query text. TECHWOLF has no validation split. Only the ones on disk are read.
 */
export const EVALUATION_QUERY_FILES: readonly { file: string; column: string }[] = [
  ...(['tech', 'house'] as const).flatMap((subset) => (['validation', 'test'] as const).map((split) => ({ file: skillExtractionFile(subset, split), column: 'sentence' }))),
  { file: skillExtractionFile('techwolf', 'test'), column: 'sentence' },
  { file: JOBBERT_FILES.validation, column: 'vacancyTitle' },
  { file: JOBBERT_FILES.test, column: 'vacancyTitle' },
];

const options = z
  .strictObject({
    include_esco_skills: z.boolean().default(true).describe('ESCO skills: preferred and alternative labels, descriptions, definitions (esco-v1.1.1/skills_en.csv)'),
    include_esco_occupations: z.boolean().default(true).describe('ESCO occupations: preferred and alternative labels, descriptions, definitions (esco-v1.1.1/occupations_en.csv)'),
    include_onet_occupations: z.boolean().default(true).describe('O*NET occupation titles and descriptions (onet-29.2/Occupation Data.txt)'),
    include_onet_tasks: z.boolean().default(true).describe('O*NET task statements (onet-29.2/Task Statements.txt)'),
    include_onet_dwas: z.boolean().default(true).describe('O*NET detailed work activity titles (onet-29.2/DWA Reference.txt)'),
    include_onet_alternate_titles: z.boolean().default(true).describe('O*NET alternate job titles (onet-29.2/Alternate Titles.txt)'),
    include_skillspan: z.boolean().default(true).describe('SkillSpan job-posting sentences, training split only (skillspan/json/train.json; never dev or test)'),
    min_chars: z.number().int().min(1).default(1).describe('drop texts shorter than this many characters (UTF-16 code units, after whitespace cleanup)'),
  })
  .refine((o) => DOMAIN_CORPUS_SOURCES.some((s) => o[includeKey(s)]), { message: 'every source is switched off; set at least one include_* option to true' });

export type DomainCorpusOptions = z.input<typeof options>;

function includeKey(source: DomainCorpusSource): `include_${Exclude<DomainCorpusSource, 'skillspan_train'> | 'skillspan'}` {
  return source === 'skillspan_train' ? 'include_skillspan' : `include_${source}`;
}

/** What happened to one source's texts. `read` = `kept` + `empty` + `short` + `evaluation` + `duplicate`. */
export interface DomainCorpusSourceStats {
  read: number;
  kept: number;
  /** No letter or digit outside de-identification placeholders (`hasContent`). */
  empty: number;
  /** Shorter than `min_chars`. */
  short: number;
  /** Equal (normalised) to an evaluation query. */
  evaluation: number;
  /** Equal (normalised) to a text kept earlier, from this source or an earlier one. */
  duplicate: number;
}

export interface DomainCorpusStats {
  /** Per included source, in output order. */
  sources: Partial<Record<DomainCorpusSource, DomainCorpusSourceStats>>;
  /** Texts in the corpus. */
  texts: number;
  /** Evaluation files read for decontamination (relative to the data root). */
  evaluationFiles: string[];
  /** Distinct normalised evaluation query texts. */
  evaluationQueries: number;
  /** Corpus texts dropped because they equal an evaluation query (all sources). */
  droppedAsEvaluation: number;
  /** The first few of those, for the run log. */
  droppedExamples: TextExample[];
}

const DROPPED_EXAMPLES = 20;

/** SkillSpan's de-identification placeholders: `<ORGANIZATION>`, `<LOCATION>`, `<CONTACT>`, … */
const PLACEHOLDER = /<[A-Z_]+>/g;

/** Whether a text has a letter or digit outside placeholders: an MLM target worth predicting. */
export function hasContent(text: string): boolean {
  return /[\p{L}\p{N}]/u.test(text.replace(PLACEHOLDER, ''));
}

/**
 * Every evaluation query text on disk, normalised (`normalizeForOverlap`), and the files read.
 * All rows of each file count (see the header for why not just the recipes' queries); bad rows
 * follow `ctx.onBadRow`.
 */
export async function loadEvaluationQueryTexts(ctx: RecipeContext): Promise<{ texts: Set<string>; files: string[] }> {
  const texts = new Set<string>();
  const files: string[] = [];
  for (const { file, column } of EVALUATION_QUERY_FILES) {
    if (!existsSync(join(ctx.dataRoot, file))) continue;
    files.push(file);
    await forEachRow(ctx, readCsv(ctx.dataRoot, file, { required: [column] }), (row) => {
      const text = normalizeForOverlap(row.optional(column));
      if (text !== '') texts.add(text);
    });
  }
  return { texts, files };
}

/** ESCO concepts' texts, concept by concept: label, alternative labels, description, definition. */
async function escoTexts(ctx: RecipeContext, which: keyof typeof ESCO_FILES): Promise<TextExample[]> {
  const concepts = await loadEscoConcepts(ctx, which);
  // esco.ts does not keep `definition` (filled for 10 concepts only), so it is read here.
  const definitions = new Map<string, TextExample>();
  await forEachRow(ctx, readCsv(ctx.dataRoot, ESCO_FILES[which], { required: ['conceptUri', 'definition'] }), (row) => {
    const text = cleanText(row.optional('definition'));
    if (text !== '') definitions.set(row.optional('conceptUri'), { text, source: row.source });
  });
  const out: TextExample[] = [];
  for (const c of concepts) {
    out.push({ text: c.preferredLabel, source: c.source });
    for (const label of c.altLabels) out.push({ text: label, source: c.source });
    if (c.description !== '') out.push({ text: c.description, source: c.source });
    const definition = definitions.get(c.uri);
    if (definition !== undefined) out.push(definition);
  }
  return out;
}

/** One or more text columns of an O*NET file, row by row. */
async function onetTexts(ctx: RecipeContext, file: string, columns: readonly string[]): Promise<TextExample[]> {
  const out: TextExample[] = [];
  await forEachRow(ctx, readTsv(ctx.dataRoot, file, { columns: 'header', required: columns }), (row) => {
    for (const column of columns) out.push({ text: cleanText(row.text(column)), source: row.source });
  });
  return out;
}

async function sourceTexts(ctx: RecipeContext, source: DomainCorpusSource): Promise<TextExample[]> {
  switch (source) {
    case 'esco_skills':
      return escoTexts(ctx, 'skills');
    case 'esco_occupations':
      return escoTexts(ctx, 'occupations');
    case 'onet_occupations':
      return onetTexts(ctx, ONET_FILES.occupations, ['Title', 'Description']);
    case 'onet_tasks':
      return onetTexts(ctx, ONET_FILES.tasks, ['Task']);
    case 'onet_dwas':
      return onetTexts(ctx, DWA_FILE, ['DWA Title']);
    case 'onet_alternate_titles':
      return onetTexts(ctx, ONET_FILES.alternateTitles, ['Alternate Title']);
    case 'skillspan_train': {
      // The skillspan recipe owns the JSON layout and its checks; only its training split is asked for.
      const sentences = await skillspan.load(ctx, { split: 'train', subset: 'all' });
      return sentences.map((s) => ({ text: s.text, source: s.source }));
    }
  }
}

/**
 * The corpus and what was dropped from it. `RECIPES['domain-corpus'].load` returns the same
 * texts; call this when the run log should say how many evaluation queries were removed.
 */
export async function loadDomainCorpus(ctx: RecipeContext, opts: DomainCorpusOptions = {}): Promise<{ texts: TextExample[]; stats: DomainCorpusStats }> {
  const o = domainCorpus.parseOptions(opts);
  const included = DOMAIN_CORPUS_SOURCES.filter((s) => o[includeKey(s)]);
  // Every missing file is reported (one error per dataset, naming all its missing files) before the slow parsing starts.
  const needed = new Map<DatasetKey, string[]>();
  for (const s of included) needed.set(SOURCE_FILES[s].dataset, [...(needed.get(SOURCE_FILES[s].dataset) ?? []), ...SOURCE_FILES[s].files]);
  for (const [dataset, files] of needed) requireFiles(ctx, dataset, files);

  const held = await loadEvaluationQueryTexts(ctx);
  const seen = new Set<string>();
  const texts: TextExample[] = [];
  const stats: DomainCorpusStats = { sources: {}, texts: 0, evaluationFiles: held.files, evaluationQueries: held.texts.size, droppedAsEvaluation: 0, droppedExamples: [] };
  for (const source of included) {
    const counts: DomainCorpusSourceStats = { read: 0, kept: 0, empty: 0, short: 0, evaluation: 0, duplicate: 0 };
    stats.sources[source] = counts;
    for (const example of await sourceTexts(ctx, source)) {
      counts.read++;
      if (!hasContent(example.text)) {
        counts.empty++;
        continue;
      }
      if (example.text.length < o.min_chars) {
        counts.short++;
        continue;
      }
      const key = normalizeForOverlap(example.text);
      // Checked before de-duplication, so every copy of an evaluation text counts as dropped.
      if (held.texts.has(key)) {
        counts.evaluation++;
        stats.droppedAsEvaluation++;
        if (stats.droppedExamples.length < DROPPED_EXAMPLES) stats.droppedExamples.push(example);
        continue;
      }
      if (seen.has(key)) {
        counts.duplicate++;
        continue;
      }
      seen.add(key);
      texts.push(example);
      counts.kept++;
    }
  }
  stats.texts = texts.length;
  return { texts, stats };
}

export const domainCorpus = defineRecipe({
  name: 'domain-corpus',
  kind: 'corpus',
  description: 'ESCO, O*NET and SkillSpan-train texts for MLM pretraining, de-duplicated, with every evaluation query removed',
  options,
  run: async (ctx, o) => (await loadDomainCorpus(ctx, o)).texts,
});
