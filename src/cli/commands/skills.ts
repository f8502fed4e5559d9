/**
 * `kiln skills …`: the Skills Graph pipeline (src/skills/).
 *
 *   kiln skills build    --model EXPORT_DIR --out SKILLS_DIR [--data-root DIR] [--threads N]
 *                        [--weights dense=1,bm25=0.5,tfidf_char=0.5,trie=1] [--threshold T] [--top-k K]
 *                        [--quiet] [--json]
 *   kiln skills extract  --model SKILLS_DIR [--input FILE|-] [--out FILE] [--text-field NAME]
 *                        [--id-field NAME] [--no-expand] [--threshold T] [--top-k K] [--pretty] [--quiet]
 *   kiln skills eval     --model SKILLS_DIR [--data-root DIR] [--json] [--tune [--write]] [--threads N]
 *   kiln skills postings --split dev|train [--out FILE] [--data-root DIR] [--quiet]
 *
 * build: the taxonomy trie, the skills graph and the skill embeddings of an exported two-tower
 * model, in one directory (src/skills/model.ts). extract: job postings or profiles (JSONL, CSV
 * or Arrow with a text column; plain text on stdin is one document) → one JSON record per
 * document with its skills, scores and provenance. eval: the taggers alone and combined on
 * the TECH and HOUSE validation sets, and the trie's spans on SkillSpan dev. postings: SkillSpan
 * postings rebuilt from its sentences, as JSONL to feed extract.
 *
 * Exit codes: 0 done; 2 a usage, input, data or model problem (nothing written).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';

import { createContext, resolveDataRoot } from '../../data/files.js';
import { loadRecipe } from '../../data/recipes/index.js';
import { DataError, type RetrievalSplit } from '../../data/types.js';
import { trieSpanScores } from '../../eval/span-match.js';
import { EmbedError, openInput } from '../../serve/embed.js';
import { evaluateSkillsSplit, formatSkillsReport, splitSignals, tuneExtraction } from '../../skills/evaluate.js';
import { buildSkillsModel, DEFAULT_SKILLS_SETTINGS, SKILL_SIGNALS, SkillsModelError, writeSkillsSettings, type SkillSignal, type SkillsSettings } from '../../skills/model.js';
import { readSkillspanPostings } from '../../skills/postings.js';
import { SkillTagger, type ExtractedDocument } from '../../skills/tagger.js';
import { trainingRunGivenAsModel } from '../../track/run-dir.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { UsageError } from '../usage.js';

/** User errors: their message is the report (exit 2), never a stack trace. */
function isUserError(error: unknown): error is Error {
  return error instanceof DataError || error instanceof EmbedError || error instanceof SkillsModelError;
}

async function reportUserErrors(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (isUserError(error)) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

const positiveInteger = (flag: string, value: number | undefined): void => {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new UsageError(`${flag} ${value}: expected a positive integer`);
};

interface BuildArgs {
  model: string;
  out: string;
  'data-root'?: string;
  threads?: number;
  quiet: boolean;
  json: boolean;
  weights?: string;
  threshold?: number;
  'top-k'?: number;
}

/** `dense=1,bm25=0.5,…` over the defaults; a signal left out keeps its default weight. */
function parseWeights(text: string): Record<SkillSignal, number> {
  const weights = { ...DEFAULT_SKILLS_SETTINGS.fusion.weights };
  for (const part of text.split(',')) {
    const [name, value, ...rest] = part.split('=').map((p) => p.trim());
    const weight = Number(value);
    if (!(SKILL_SIGNALS as readonly string[]).includes(name ?? '') || value === undefined || value === '' || rest.length > 0 || !(weight >= 0) || !Number.isFinite(weight)) {
      throw new UsageError(`--weights ${text}: "${part}" is not NAME=WEIGHT with NAME one of ${SKILL_SIGNALS.join(', ')} and WEIGHT a number ≥ 0`);
    }
    weights[name as SkillSignal] = weight;
  }
  if (weights.dense === 0 && weights.trie === 0) throw new UsageError(`--weights ${text}: dense and trie are both 0; the taggers that emit skills need a weight`);
  return weights;
}

const buildCommand: CommandModule<object, BuildArgs> = {
  command: 'build',
  describe: 'Build a skills model directory: taxonomy trie, skills graph and skill embeddings of an exported two-tower model',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Exported two-tower model directory (kiln export --out)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Skills model directory; an existing one is replaced only when the new one is complete' })
      .option('data-root', { type: 'string', describe: 'Data root with esco-v1.1.1/ and stackoverflow-tags/ (default: $KILN_DATA)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('weights', {
        type: 'string',
        describe: `Fusion weights, e.g. tfidf_char=0 (a lexical ranker at 0 is not computed when extracting: faster, see docs/skills.md); default ${Object.entries(DEFAULT_SKILLS_SETTINGS.fusion.weights).map(([k, v]) => `${k}=${v}`).join(',')}`,
      })
      .option('threshold', { type: 'number', describe: `The semantic tagger's cosine threshold (default ${DEFAULT_SKILLS_SETTINGS.semantic.threshold})` })
      .option('top-k', { type: 'number', describe: `Semantic skills a sentence may add (default ${DEFAULT_SKILLS_SETTINGS.semantic.topK})` })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress notes on stderr (taxonomy, vectors, lexical); the result and errors still print' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result (directory, manifest, seconds) as JSON on stdout' })
      .check((args) => {
        positiveInteger('--threads', args.threads);
        positiveInteger('--top-k', args['top-k']);
        if (args.threshold !== undefined && !(args.threshold >= -1 && args.threshold <= 1)) throw new UsageError(`--threshold ${args.threshold}: expected a cosine in [-1, 1]`);
        if (args.weights !== undefined) parseWeights(args.weights);
        const trainingRun = trainingRunGivenAsModel('--model', args.model);
        if (trainingRun !== null) throw new UsageError(trainingRun);
        return true;
      }),
  handler: (args) =>
    reportUserErrors(async () => {
      const ctx = createContext({ dataRoot: resolveDataRoot(args['data-root']), onBadRow: 'fail' });
      const defaults = DEFAULT_SKILLS_SETTINGS;
      const settings: SkillsSettings = {
        ...defaults,
        fusion: { ...defaults.fusion, weights: args.weights === undefined ? defaults.fusion.weights : parseWeights(args.weights) },
        semantic: { ...defaults.semantic, threshold: args.threshold ?? defaults.semantic.threshold, topK: args['top-k'] ?? defaults.semantic.topK },
      };
      const { out, manifest, seconds } = await buildSkillsModel({ model: args.model, out: args.out, ctx, threads: args.threads, settings, log: args.quiet ? () => {} : undefined });
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ out, manifest, seconds }, null, 2)}\n`);
        return;
      }
      const t = manifest.taxonomy;
      process.stdout.write(`skills model ${out}: ${t.skills} skills, ${t.trieLabels} trie labels, ${t.edges.broader + t.edges.essential + t.edges.optional} graph edges, model ${manifest.modelId}; ${seconds.toFixed(1)} s\n`);
    }),
};

interface ExtractArgs {
  model: string;
  input: string;
  out?: string;
  'text-field': string;
  'id-field'?: string;
  expand: boolean;
  threshold?: number;
  'top-k'?: number;
  pretty: boolean;
  'batch-size': number;
  threads?: number;
  quiet: boolean;
}

/** A human-readable rendering of one record (--pretty). */
function pretty(record: ExtractedDocument): string {
  const lines = [`${record.id}: ${record.skills.length} skills (${record.sentences} sentences; sections: ${record.sections.map((s) => s.kind).join(', ') || 'none'})`];
  for (const s of record.skills) {
    const how =
      s.kind === 'expanded'
        ? `expanded: ${s.expandedFrom!.relation} of "${s.expandedFrom!.label}"`
        : s.mentions.map((m) => (m.tagger === 'trie' ? `trie "${m.text}" [${m.start},${m.end}) in ${m.section}` : `semantic (cos ${m.similarity.toFixed(2)}) [${m.start},${m.end}) in ${m.section}`)).join('; ');
    lines.push(`  ${s.score.toFixed(3)}  ${s.label}  — ${how}`);
  }
  return lines.join('\n');
}

const extractCommand: CommandModule<object, ExtractArgs> = {
  command: 'extract',
  describe: 'Extract skills, with scores and provenance, from job postings or profiles',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Skills model directory (kiln skills build --out)' })
      .option('input', { type: 'string', default: '-', describe: 'Documents: .jsonl, .csv (header line) or .arrow with a text column; - reads plain text from stdin as one document' })
      .option('out', { type: 'string', describe: 'Write the JSONL records here (atomically) instead of stdout' })
      .option('text-field', { type: 'string', default: 'text', describe: 'Text column/key' })
      .option('id-field', { type: 'string', describe: 'Id column/key (default: id; without one, the 1-based row number)' })
      .option('expand', { type: 'boolean', default: true, describe: 'Add broader, narrower and related skills from the graph (--no-expand: found skills only)' })
      .option('threshold', { type: 'number', describe: "The semantic tagger's cosine threshold (default: the skills model's)" })
      .option('top-k', { type: 'number', describe: 'Semantic skills a sentence may add beyond its trie matches (default: the skills model’s)' })
      .option('pretty', { type: 'boolean', default: false, describe: 'Print a readable summary instead of JSONL (stdout only)' })
      .option('batch-size', { type: 'number', default: 32, describe: 'Documents per model call' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No closing note on stderr (documents written); skipped rows and errors still print' })
      .check((args) => {
        if (args.threshold !== undefined && !(args.threshold >= -1 && args.threshold <= 1)) throw new UsageError(`--threshold ${args.threshold}: expected a cosine in [-1, 1]`);
        positiveInteger('--top-k', args['top-k']);
        positiveInteger('--batch-size', args['batch-size']);
        positiveInteger('--threads', args.threads);
        if (args.pretty && args.out !== undefined) throw new UsageError('--pretty prints to stdout: leave out --out (the file is always JSONL)');
        return true;
      }),
  handler: (args) =>
    reportUserErrors(async () => {
      const tagger = await SkillTagger.load(args.model, { threads: args.threads });
      try {
        const options = { expand: args.expand, threshold: args.threshold, topK: args['top-k'] };
        const records: string[] = [];
        const emit = (docs: ExtractedDocument[]): void => {
          for (const d of docs) {
            if (args.out !== undefined) records.push(`${JSON.stringify(d)}\n`);
            else process.stdout.write(args.pretty ? `${pretty(d)}\n\n` : `${JSON.stringify(d)}\n`);
          }
        };
        let skipped = 0;
        if (args.input === '-') {
          emit(await tagger.extract([{ id: 'stdin', text: readFileSync(0, 'utf8') }], options));
        } else {
          const source = await openInput(args.input, { textField: args['text-field'], idField: args['id-field'] });
          try {
            let batch: Array<{ id: string; text: string }> = [];
            for await (const row of source.rows) {
              if (row instanceof DataError) {
                process.stderr.write(`skipped: ${row.message}\n`);
                skipped++;
                continue;
              }
              batch.push({ id: row.id, text: row.text });
              if (batch.length >= args['batch-size']) {
                emit(await tagger.extract(batch, options));
                batch = [];
              }
            }
            if (batch.length > 0) emit(await tagger.extract(batch, options));
          } finally {
            await source.close();
          }
        }
        if (args.out !== undefined) {
          writeFileAtomic(resolve(args.out), records.map((r) => Buffer.from(r, 'utf8')));
          if (!args.quiet) process.stderr.write(`${records.length} documents → ${resolve(args.out)}${skipped > 0 ? `; ${skipped} bad row(s) skipped` : ''}\n`);
        }
      } finally {
        await tagger.release();
      }
    }),
};

interface EvalArgs {
  model: string;
  'data-root'?: string;
  json: boolean;
  tune: boolean;
  write: boolean;
  threads?: number;
}

const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'The taggers alone and combined on TECH and HOUSE validation (RP@5, RP@10, MRR), and the trie’s spans on SkillSpan dev',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Skills model directory (kiln skills build --out)' })
      .option('data-root', { type: 'string', describe: 'Data root (default: $KILN_DATA)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the results as JSON' })
      .option('tune', { type: 'boolean', default: false, describe: "Also search the semantic tagger's threshold and top k for the best extraction F1 (mean of TECH and HOUSE validation)" })
      .option('write', { type: 'boolean', default: false, describe: 'With --tune: save the tuned threshold and top k into the skills model (skills.json)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .check((args) => {
        positiveInteger('--threads', args.threads);
        if (args.write && !args.tune) throw new UsageError('--write saves what --tune finds: add --tune');
        return true;
      }),
  handler: (args) =>
    reportUserErrors(async () => {
      const ctx = createContext({ dataRoot: resolveDataRoot(args['data-root']), onBadRow: 'fail' });
      const tagger = await SkillTagger.load(args.model, { threads: args.threads });
      try {
        const reports = [];
        const evaluated = [];
        // Validation splits only: the settings tuned here must never see a test sentence.
        for (const subset of ['tech', 'house'] as const) {
          const split = (await loadRecipe('skill-extraction', ctx, { subset, split: 'validation' })).data as RetrievalSplit;
          const signals = await splitSignals(tagger, split);
          evaluated.push({ split, signals });
          reports.push(await evaluateSkillsSplit(tagger, split, undefined, signals));
        }
        const spans = await trieSpanScores(ctx, tagger.files.trie, 'dev');
        const tuned = args.tune ? tuneExtraction(tagger, evaluated) : null;
        if (tuned !== null && args.write) {
          writeSkillsSettings(tagger.files.dir, { ...tagger.settings, semantic: { ...tagger.settings.semantic, threshold: tuned.threshold, topK: tuned.topK } });
        }
        if (args.json) {
          process.stdout.write(`${JSON.stringify({ model: tagger.files.manifest.modelId, settings: tagger.settings, splits: reports, trieSpans: { split: 'skillspan/dev', ...spans }, tuned }, null, 2)}\n`);
          return;
        }
        const pct = (v: number): string => (100 * v).toFixed(2);
        const { threshold, topK } = tagger.settings.semantic;
        const tuneLine =
          tuned === null
            ? []
            : [
                '',
                `tuned on validation: threshold ${tuned.threshold}, top k ${tuned.topK} → combined extraction F1 ${pct(tuned.f1)} (mean of TECH and HOUSE; now threshold ${threshold}, top k ${topK})${args.write ? `; written to ${join(tagger.files.dir, 'skills.json')}` : '; --write saves it'}`,
              ];
        process.stdout.write(
          [
            `skills model ${tagger.files.dir} (model ${tagger.files.manifest.modelId}); ×100, validation splits (${reports.map((r) => `${r.split} ${r.queries} sentences`).join(', ')})`,
            formatSkillsReport(reports),
            '',
            `trie spans on SkillSpan dev (${spans.sentences} sentences, ${spans.gold} gold skill/knowledge spans, ${spans.predicted} matches): exact P ${pct(spans.exact.precision)} R ${pct(spans.exact.recall)} F1 ${pct(spans.exact.f1)}; overlap P ${pct(spans.partial.precision)} R ${pct(spans.partial.recall)} F1 ${pct(spans.partial.f1)}`,
            ...tuneLine,
          ].join('\n') + '\n',
        );
      } finally {
        await tagger.release();
      }
    }),
};

interface PostingsArgs {
  split: 'train' | 'dev';
  out?: string;
  'data-root'?: string;
  quiet: boolean;
}

const postingsCommand: CommandModule<object, PostingsArgs> = {
  command: 'postings',
  describe: 'SkillSpan job postings rebuilt from its sentences, as JSONL {id, source, text} for kiln skills extract',
  builder: (y) =>
    y
      .option('split', { type: 'string', choices: ['train', 'dev'] as const, default: 'dev' as const, describe: 'SkillSpan json/<split>.json' })
      .option('out', { type: 'string', describe: 'Write here (atomically) instead of stdout' })
      .option('data-root', { type: 'string', describe: 'Data root (default: $KILN_DATA)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No closing note on stderr (postings written); errors still print' }),
  handler: (args) =>
    reportUserErrors(async () => {
      const ctx = createContext({ dataRoot: resolveDataRoot(args['data-root']), onBadRow: 'fail' });
      const postings = await readSkillspanPostings(ctx, args.split);
      const lines = postings.map((p) => `${JSON.stringify(p)}\n`);
      if (args.out === undefined) for (const line of lines) process.stdout.write(line);
      else {
        writeFileAtomic(resolve(args.out), lines.map((l) => Buffer.from(l, 'utf8')));
        if (!args.quiet) process.stderr.write(`${postings.length} postings → ${resolve(args.out)}\n`);
      }
    }),
};

export const skillsCommand: CommandModule<object, object> = {
  command: 'skills <command>',
  describe: 'The Skills Graph pipeline: build, extract, eval, postings',
  builder: (y) =>
    y
      .command(buildCommand as unknown as CommandModule<object, object>)
      .command(extractCommand as unknown as CommandModule<object, object>)
      .command(evalCommand as unknown as CommandModule<object, object>)
      .command(postingsCommand as unknown as CommandModule<object, object>)
      .demandCommand(1, 'Name a subcommand: kiln skills build | extract | eval | postings'),
  handler: () => undefined,
};
