/**
 * `kiln eval --run runs/<id> [--split NAME ...] [--baseline bm25 [tfidf_char]]`
 * `kiln eval --run runs/<id> --hybrid`
 * `kiln eval --config FILE --baseline bm25 [tfidf_char] [--set key=value ...]`
 *
 * Evaluates a saved model again on its config's splits (full splits, never the training-time
 * samples), optionally beside BM25 on the same splits; or BM25 alone for a config. `--hybrid`
 * prints the model, BM25, character TF-IDF and their fusion side by side, with the fusion weight
 * chosen on each validation split (src/eval/hybrid.ts). Writes
 * nothing into the run unless --save is given (then eval.json, atomically).
 */
import type { CommandModule } from 'yargs';

import { ConfigError, loadConfig, loadResolvedRunConfig, THIS_MACHINE } from '../../config/index.js';
import { DataError } from '../../data/types.js';
import { UsageError } from '../usage.js';
import { evaluateRun } from '../../train/evaluate-run.js';
import { numericLeaves, withDerivedRun } from '../../track/derived.js';
import { StoreError } from '../../track/store.js';
import { LEXICAL_NAMES, type LexicalName } from '../../eval/lexical.js';

interface EvalArgs {
  run?: string;
  config?: string;
  split: string[];
  baseline: LexicalName[];
  set: string[];
  hybrid: boolean;
  'data-root'?: string;
  json: boolean;
  save: boolean;
  threads?: number;
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Evaluate a trained run (and/or the BM25 baseline) on its evaluation splits',
  builder: (y) =>
    y
      .option('run', { type: 'string', describe: 'Run directory, e.g. runs/twotower-20261123-101500' })
      .option('config', { type: 'string', describe: 'A config whose splits to evaluate (with --baseline only)' })
      .option('split', { type: 'string', array: true, default: [], describe: 'Only these eval names from data.eval' })
      .option('baseline', { type: 'string', array: true, choices: LEXICAL_NAMES, default: [] as LexicalName[], describe: 'Also (or, with --config, only) evaluate these lexical baselines: bm25, tfidf_char' })
      .option('set', { type: 'string', array: true, default: [], describe: 'With --config: override a config value, e.g. --set eval.lexical.match=joined (repeatable)' })
      .option('hybrid', {
        type: 'boolean',
        default: false,
        describe: 'Print the model, BM25, character TF-IDF and their fusion side by side, with the fusion weight chosen on each validation split (never on a test split)',
      })
      .option('data-root', { type: 'string', describe: 'Data root (default: $KILN_DATA)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print metrics as JSON' })
      .option('save', { type: 'boolean', default: false, describe: 'Write the results to <run>/eval.json' })
      .option('threads', { type: 'number', describe: "libtorch intra-op threads for the model (default: the run's train.threads)" })
      .check((args) => {
        if ((args.run === undefined) === (args.config === undefined)) throw new UsageError('give exactly one of --run runs/<id> or --config FILE');
        if (args.config !== undefined && args.baseline.length === 0) throw new UsageError('--config evaluates a baseline only: add --baseline bm25 (a model needs --run)');
        if (args.set.length > 0 && args.config === undefined) throw new UsageError("--set changes a config: give --config (a run's config.yaml is fixed)");
        if (args.save && args.run === undefined) throw new UsageError('--save writes into a run: give --run');
        if (args.hybrid && args.run === undefined) throw new UsageError('--hybrid fuses a model with a lexical ranker: give --run runs/<id>');
        if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UsageError(`--threads ${args.threads}: expected a positive integer`);
        return true;
      }),
  handler: async (args) => {
    try {
      // A run's model is evaluated on train.device: this machine must have it. A baseline alone computes nothing there.
      const loaded = args.run !== undefined ? loadResolvedRunConfig(args.run, THIS_MACHINE) : loadConfig(args.config!, args.set);
      const evaluate = (): ReturnType<typeof evaluateRun> =>
        evaluateRun(loaded.config, {
          runPath: args.run,
          splits: args.split,
          baselines: args.baseline,
          hybrid: args.hybrid,
          dataRoot: args['data-root'],
          save: args.save,
          threads: args.threads,
        });
      // An evaluation of a run is recorded in the run store beside it; a baseline of a config has no run.
      const params = { splits: JSON.stringify(args.split), baselines: JSON.stringify(args.baseline), hybrid: JSON.stringify(args.hybrid) };
      const result =
        args.run === undefined
          ? await evaluate()
          : await withDerivedRun(args.run, 'eval', params, evaluate, (r) => ({
              results: { ...r.metrics, ...numericLeaves({ bm25: r.bm25, ...(r.tfidf_char === undefined ? {} : { tfidf_char: r.tfidf_char }) }) },
            }), (error) => error instanceof ConfigError || error instanceof DataError);
      process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.table}\n`);
    } catch (error) {
      if (error instanceof ConfigError || error instanceof DataError || error instanceof StoreError) {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};
