/**
 * Reader for ESCO concepts (occupations and skills) from the official ESCO v1.1.1 English CSV
 * export (European Commission; reuse under Decision 2011/833/EU, CC BY 4.0 — "This service
 * uses the ESCO classification of the European Commission."; download:
 * https://esco.ec.europa.eu/en/use-esco/download). Several recipes use it: the ESCO pair
 * recipes, and the JobBERT and skill-extraction benchmarks, whose corpora are all ESCO
 * occupations / skills.
 *
 * `altLabels` and `hiddenLabels` are newline-separated inside one quoted CSV field.
 */
import { statSync } from 'node:fs';

import { handleRow, readCsv, requireFiles } from './files.js';
import { cleanText, splitLines } from './recipes/recipe.js';
import { DataError, type PairExample, type RecipeContext } from './types.js';

export const ESCO_FILES = {
  occupations: 'esco-v1.1.1/occupations_en.csv',
  skills: 'esco-v1.1.1/skills_en.csv',
} as const;

export interface EscoConcept {
  readonly uri: string;
  readonly preferredLabel: string;
  /** Alternative labels, cleaned and de-duplicated; may include the preferred label itself. */
  readonly altLabels: readonly string[];
  readonly hiddenLabels: readonly string[];
  /** '' when the concept has none. */
  readonly description: string;
  /** 'esco-v1.1.1/…csv:line' */
  readonly source: string;
}

// Parsed files, keyed by path, size and mtime: the ESCO pair recipes and the JobBERT and
// skill-extraction benchmarks all read the same two files (skills_en.csv takes ~0.4 s to
// parse), often concurrently, so the in-flight parse is shared. A parse keeps its bad rows, and
// every load replays them under its own context's policy (throw the first, or count them all),
// so a cached load reports exactly what a fresh one would.
interface Parsed {
  concepts: readonly EscoConcept[];
  badRows: readonly DataError[];
}
const cache = new Map<string, Promise<Parsed>>();

async function parseEscoFile(root: string, rel: string): Promise<Parsed> {
  const concepts: EscoConcept[] = [];
  const badRows: DataError[] = [];
  const seen = new Map<string, string>();
  for await (const row of readCsv(root, rel, { required: ['conceptUri', 'preferredLabel', 'altLabels', 'hiddenLabels', 'description'] })) {
    try {
      const uri = row.text('conceptUri');
      if (!/^https?:\/\//.test(uri)) throw row.error(`conceptUri is ${JSON.stringify(uri)}; expected an http(s) URI`);
      const first = seen.get(uri);
      if (first !== undefined) throw row.error(`conceptUri ${uri} repeats the concept at ${first}`);
      const preferredLabel = cleanText(row.text('preferredLabel'));
      seen.set(uri, row.source);
      concepts.push(
        Object.freeze({
          uri,
          preferredLabel,
          altLabels: Object.freeze([...new Set(splitLines(row.optional('altLabels')))]),
          hiddenLabels: Object.freeze([...new Set(splitLines(row.optional('hiddenLabels')))]),
          description: cleanText(row.optional('description')),
          source: row.source,
        }),
      );
    } catch (error) {
      if (!(error instanceof DataError)) throw error;
      badRows.push(error);
    }
  }
  return { concepts: Object.freeze(concepts), badRows };
}

/**
 * All concepts of one ESCO file, in file order (shared, read-only). A row without a conceptUri
 * or preferredLabel, or repeating an earlier conceptUri, is a bad row (thrown or counted in
 * `ctx.report` per `ctx.onBadRow`).
 */
export async function loadEscoConcepts(ctx: RecipeContext, which: keyof typeof ESCO_FILES): Promise<readonly EscoConcept[]> {
  const rel = ESCO_FILES[which];
  const [file] = requireFiles(ctx, 'esco', [rel]) as [string];
  const stat = statSync(file);
  const key = `${file}\0${stat.size}\0${stat.mtimeMs}`;
  let parsed = cache.get(key);
  if (parsed === undefined) {
    parsed = parseEscoFile(ctx.dataRoot, rel);
    cache.set(key, parsed);
    parsed.catch(() => cache.delete(key));
  }
  const { concepts, badRows } = await parsed;
  for (const error of badRows) {
    handleRow(ctx, () => {
      throw error;
    });
  }
  return concepts;
}

/**
 * Synonym pairs from ESCO concepts: every alternative label (and hidden label, if asked)
 * → the preferred label, and optionally the description → the preferred label. Labels equal
 * to the preferred label up to case are dropped (a pair of identical texts teaches nothing),
 * as are repeats within a concept. `group` is the concept URI.
 */
export function escoPairs(
  concepts: readonly EscoConcept[],
  options: { labelQueryType: string; docType: string; includeDescription: boolean; descriptionQueryType: string; includeHidden: boolean },
): PairExample[] {
  const out: PairExample[] = [];
  for (const c of concepts) {
    const seen = new Set([c.preferredLabel.toLowerCase()]);
    const labels = options.includeHidden ? [...c.altLabels, ...c.hiddenLabels] : c.altLabels;
    for (const label of labels) {
      const key = label.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ query: label, doc: c.preferredLabel, group: c.uri, queryType: options.labelQueryType, docType: options.docType, source: c.source });
    }
    if (options.includeDescription && c.description !== '') {
      out.push({ query: c.description, doc: c.preferredLabel, group: c.uri, queryType: options.descriptionQueryType, docType: options.docType, source: c.source });
    }
  }
  return out;
}
