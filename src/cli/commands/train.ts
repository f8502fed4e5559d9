/**
 * `kiln train --config FILE [--set key=value ...] [--data-root DIR] [--runs DIR] [--quiet]`
 * `kiln train --resume runs/<id>`
 *
 * A bad config exits with code 2 and writes nothing; the run directory is created only after
 * the config is valid and the data has loaded. The config reference is the epilogue below.
 */
import type { CommandModule } from 'yargs';

import { ConfigError, configHelpText, loadConfig, loadResolvedRunConfig } from '../../config/index.js';
import { DataError } from '../../data/types.js';
import { UsageError } from '../usage.js';
import { trainRun } from '../../train/run.js';
import { StoreError } from '../../track/store.js';

interface TrainArgs {
  config?: string;
  set: string[];
  resume?: string;
  'data-root'?: string;
  runs: string;
  quiet: boolean;
  'tracking-uri'?: string;
  experiment: string;
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Train a model from a YAML config (task: twotower, mlm or cross-encoder)',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'YAML run config (see configs/)' })
      .option('set', { type: 'string', array: true, default: [], describe: 'Override a config value, e.g. --set train.lr=3e-4 (repeatable)' })
      .option('resume', { type: 'string', describe: 'Continue an interrupted run from its last checkpoint: --resume runs/<id>' })
      .option('data-root', { type: 'string', describe: 'Data root (default: $KILN_DATA)' })
      .option('runs', { type: 'string', default: 'runs', describe: 'Directory that holds run directories' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Plain log lines instead of a progress bar' })
      .option('tracking-uri', { type: 'string', default: process.env.MLFLOW_TRACKING_URI, describe: 'Also log the run to this MLflow tracking server (default: $MLFLOW_TRACKING_URI)' })
      .option('experiment', { type: 'string', default: process.env.MLFLOW_EXPERIMENT_NAME ?? 'kiln', describe: 'MLflow experiment name (default: $MLFLOW_EXPERIMENT_NAME or kiln)' })
      .check((args) => {
        for (const name of ['config', 'resume'] as const) {
          if (Array.isArray(args[name])) throw new UsageError(`--${name} is given ${(args[name] as unknown as unknown[]).length} times; give it once`);
        }
        if ((args.config === undefined) === (args.resume === undefined)) throw new UsageError('give exactly one of --config FILE or --resume runs/<id>');
        if (args.resume !== undefined && args.set.length > 0) throw new UsageError('--set cannot change a run being resumed (its config.yaml is fixed)');
        return true;
      })
      .epilogue(`Config keys (YAML):\n${configHelpText()}`),
  handler: async (args) => {
    try {
      const loaded = args.resume !== undefined ? loadResolvedRunConfig(args.resume) : loadConfig(args.config!, args.set);
      const summary = await trainRun(loaded, {
        dataRoot: args['data-root'],
        runsRoot: args.runs,
        resumeRun: args.resume,
        plainProgress: args.quiet || !process.stderr.isTTY,
        mlflow: args['tracking-uri'] === undefined || args['tracking-uri'] === '' ? undefined : { trackingUri: args['tracking-uri'], experiment: args.experiment },
      });
      process.exitCode = summary.status === 'diverged' ? 1 : 0;
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (error instanceof DataError) {
        process.stderr.write(`data error: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (error instanceof StoreError) {
        process.stderr.write(`run store: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};
