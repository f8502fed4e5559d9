/**
 * `kiln index build --model EXPORT_DIR --corpus FILE(.jsonl|.csv|.arrow) --out INDEX_DIR
 *                   [--id-field NAME] [--text-field NAME] [--labels-field NAME]
 *                   [--doc-type TYPE] [--query-type TYPE] [--lexical tfidf_char|bm25]
 *                   [--method rrf|weighted] [--weight W] [--rrf-k K] [--window N]
 *                   [--fields text,labels] [--match best|joined] [--ann-threshold N] [--threads N]
 *                   [--quiet] [--json]`
 *
 * Builds a search index for `kiln serve --index`: the corpus vectors (through `kiln embed`, so a
 * rebuild into the same directory reuses every unchanged vector), the documents the lexical
 * ranker indexes, and the fusion settings; above --ann-threshold documents an HNSW graph with
 * its recall measured against exact search. All the logic is in src/serve/search-index.ts.
 *
 * Exit codes: 0 built; 2 a usage, input or model problem, and nothing is written (an earlier
 * index in --out is left as it was).
 *
 * @example
 *   kiln index build --model exports/twotower --corpus esco/skills_en.csv --id-field conceptUri \
 *     --text-field preferredLabel --labels-field altLabels --out indexes/esco-skills
 */
import type { CommandModule } from 'yargs';

import { DataError } from '../../data/types.js';
import { EmbedError } from '../../serve/embed.js';
import { buildSearchIndex, DEFAULT_ANN_THRESHOLD } from '../../serve/search-index.js';
import { DEFAULT_HYBRID, FUSION_METHODS, type FusionMethod } from '../../eval/fusion.js';
import { DEFAULT_LEXICAL_SETTINGS, LEXICAL_NAMES, type LabelMatch, type LexicalField, type LexicalName } from '../../eval/lexical.js';
import { trainingRunGivenAsModel } from '../../track/run-dir.js';
import { UsageError } from '../usage.js';

interface IndexBuildArgs {
  model: string;
  corpus: string;
  out: string;
  'id-field'?: string;
  'text-field': string;
  'labels-field'?: string;
  'doc-type'?: string;
  'query-type'?: string;
  lexical: LexicalName;
  method: FusionMethod;
  weight: number;
  'rrf-k': number;
  window: number;
  fields: string;
  match: LabelMatch;
  'ann-threshold': number;
  threads?: number;
  quiet: boolean;
  json: boolean;
}

const buildCommand: CommandModule<object, IndexBuildArgs> = {
  command: 'build',
  describe: 'Build a search index (vectors, lexical index, fusion settings) over a corpus',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Exported two-tower model directory (kiln export --out)' })
      .option('corpus', { type: 'string', demandOption: true, describe: 'Documents: .jsonl, .csv (header line) or .arrow' })
      .option('out', { type: 'string', demandOption: true, describe: 'Index directory; an existing one is replaced only when the new one is complete' })
      .option('id-field', { type: 'string', describe: 'Id column/key (default: id; without one, the 1-based data row number)' })
      .option('text-field', { type: 'string', default: 'text', describe: 'Text column/key: what the model embeds' })
      .option('labels-field', { type: 'string', describe: 'Column/key of other names for lexical matching: a JSON array, or one label per line (e.g. ESCO altLabels)' })
      .option('doc-type', { type: 'string', describe: "Input type whose prompt the documents are embedded with (the model card's prompts)" })
      .option('query-type', { type: 'string', describe: 'Input type whose prompt /search applies to queries unless a request names one' })
      .option('lexical', { type: 'string', choices: LEXICAL_NAMES, default: DEFAULT_HYBRID.lexical, describe: 'Lexical ranker for lexical and hybrid search' })
      .option('method', { type: 'string', choices: FUSION_METHODS, default: DEFAULT_HYBRID.method, describe: 'Fusion: reciprocal rank fusion or a weighted sum of min–max normalised scores' })
      .option('weight', { type: 'number', default: DEFAULT_HYBRID.weight, describe: "The dense model's weight in [0, 1] (kiln eval --hybrid reports the best one on validation)" })
      .option('rrf-k', { type: 'number', default: DEFAULT_HYBRID.k, describe: "RRF's rank offset k" })
      .option('window', { type: 'number', default: DEFAULT_HYBRID.window, describe: 'Candidates taken from each ranker before fusing; also the largest k /search accepts' })
      .option('fields', { type: 'string', default: DEFAULT_LEXICAL_SETTINGS.fields.join(','), describe: 'Document fields the lexical ranker indexes: text, labels, or text,labels' })
      .option('match', { type: 'string', choices: ['best', 'joined'] as const, default: DEFAULT_LEXICAL_SETTINGS.match, describe: "A document's lexical score: its best label's, or all labels as one text" })
      .option('ann-threshold', { type: 'number', default: DEFAULT_ANN_THRESHOLD, describe: 'Above this many documents, dense search uses HNSW (recall measured at build) instead of an exact scan' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress notes on stderr (vectors, lexical, dense); the result and errors still print' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result (the index manifest, directory and seconds) as JSON on stdout' })
      .check((args) => {
        if (!(args.weight >= 0 && args.weight <= 1)) throw new UsageError(`--weight ${args.weight}: expected a number in [0, 1]`);
        if (!(args['rrf-k'] > 0) || !Number.isFinite(args['rrf-k'])) throw new UsageError(`--rrf-k ${args['rrf-k']}: expected a number > 0`);
        if (!Number.isInteger(args.window) || args.window < 1 || args.window > 10_000) throw new UsageError(`--window ${args.window}: expected an integer from 1 to 10000`);
        if (!Number.isInteger(args['ann-threshold']) || args['ann-threshold'] < 0) throw new UsageError(`--ann-threshold ${args['ann-threshold']}: expected an integer ≥ 0`);
        if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UsageError(`--threads ${args.threads}: expected a positive integer`);
        const fields = args.fields.split(',').map((f) => f.trim());
        const bad = fields.find((f) => f !== 'text' && f !== 'labels');
        if (bad !== undefined || fields.length === 0) throw new UsageError(`--fields ${args.fields}: expected text, labels or text,labels`);
        if (fields.includes('labels') && args['labels-field'] === undefined && args.fields !== DEFAULT_LEXICAL_SETTINGS.fields.join(',')) {
          throw new UsageError('--fields names labels: give --labels-field NAME (the column with the labels)');
        }
        const trainingRun = trainingRunGivenAsModel('--model', args.model);
        if (trainingRun !== null) throw new UsageError(trainingRun);
        return true;
      }),
  handler: async (args) => {
    try {
      const summary = await buildSearchIndex({
        model: args.model,
        corpus: args.corpus,
        out: args.out,
        idField: args['id-field'],
        textField: args['text-field'],
        labelsField: args['labels-field'],
        docType: args['doc-type'],
        queryType: args['query-type'],
        lexical: { fields: [...new Set(args.fields.split(',').map((f) => f.trim() as LexicalField))], match: args.match },
        hybrid: { lexical: args.lexical, method: args.method, weight: args.weight, k: args['rrf-k'], window: args.window },
        annThreshold: args['ann-threshold'],
        threads: args.threads,
        log: args.quiet ? () => {} : undefined,
      });
      if (args.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const m = summary.manifest;
      const dense = m.dense.search === 'exact' ? 'exact dense search' : `HNSW (efSearch ${m.dense.efSearch}, recall@${m.dense.recall.k} ${m.dense.recall.value.toFixed(4)} against exact search)`;
      process.stdout.write(`index ${summary.out}: ${m.documents} documents, model ${m.modelId}, ${dense}, ${m.hybrid.lexical} lexical, ${m.hybrid.method} fusion (weight ${m.hybrid.weight}); ${summary.seconds.toFixed(1)} s\n`);
    } catch (error) {
      if (error instanceof EmbedError || error instanceof DataError) {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};

export const indexCommand: CommandModule<object, object> = {
  command: 'index <command>',
  describe: 'Search indexes for kiln serve --index (kiln index build)',
  builder: (y) => y.command(buildCommand as unknown as CommandModule<object, object>).demandCommand(1, 'Name a subcommand: kiln index build'),
  handler: () => undefined,
};
