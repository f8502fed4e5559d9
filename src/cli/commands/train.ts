/**
 * `kiln train --config FILE [--set key=value ...] [--data-root DIR] [--runs DIR] [--threads N] [--quiet] [--json]`
 * `kiln train --config FILE --dry-run [--json]`
 * `kiln train --resume runs/<id>`
 * `kiln train --config FILE --nproc N [--nnodes M --node-rank K --master-addr HOST --master-port P] [--dist-timeout S]`
 *
 * A bad config exits with code 2 and writes nothing; the run directory is created only after
 * the config is valid and the data has loaded. --dry-run stops before that: it loads the data,
 * builds the model and times a few steps (src/train/dry-run.ts), and writes nothing. --nproc N
 * starts N data-parallel workers (src/train/launch.ts); a process started by torchrun, Slurm or a
 * Kubernetes job with torchrun's variables (WORLD_SIZE, RANK, …) is one worker of such a run.
 * The config reference is the epilogue below.
 *
 * @example
 *   kiln train --config configs/tiny.yaml --dry-run
 *   kiln train --config configs/tiny.yaml --quiet --json > summary.json
 */
import type { CommandModule } from 'yargs';

import { configHelpText, loadConfig, loadResolvedRunConfig, THIS_MACHINE } from '../../config/index.js';
import { reportUserError, UsageError } from '../usage.js';
import { checkParallelRun, DistributedTrainingError, trainRun } from '../../train/run.js';
import { launchWorkers, WORKER_VARIABLE } from '../../train/launch.js';
import { dryRunTraining, formatDryRun } from '../../train/dry-run.js';

interface TrainArgs {
  config?: string;
  set: string[];
  resume?: string;
  'data-root'?: string;
  runs: string;
  quiet: boolean;
  json: boolean;
  threads?: number;
  'dry-run': boolean;
  'tracking-uri'?: string;
  experiment: string;
  nproc: number;
  nnodes: number;
  'node-rank': number;
  'master-addr': string;
  'master-port'?: number;
  'dist-timeout': number;
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
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress bar, and no per-step, evaluation or checkpoint lines on stderr (train.log keeps them); the result and errors still print' })
      .option('json', { type: 'boolean', default: false, describe: "Print the run's summary (or, with --dry-run, its report) as JSON on stdout" })
      .option('threads', { type: 'number', describe: 'libtorch intra-op threads (default: train.threads, whose auto is the fastest measured policy)' })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'Validate the config, load and batch the data, build the model, time a few steps and print the parameter count and an estimated training time; writes nothing',
      })
      .option('tracking-uri', { type: 'string', default: process.env.MLFLOW_TRACKING_URI, describe: 'Also log the run to this MLflow tracking server (default: $MLFLOW_TRACKING_URI)' })
      .option('experiment', { type: 'string', default: process.env.MLFLOW_EXPERIMENT_NAME ?? 'kiln', describe: 'MLflow experiment name (default: $MLFLOW_EXPERIMENT_NAME or kiln)' })
      .option('nproc', { type: 'number', default: 1, describe: 'Data-parallel worker processes on this machine, as torchrun --nproc-per-node (docs/distributed.md)' })
      .option('nnodes', { type: 'number', default: 1, describe: 'Machines in a multi-machine run; each runs the same command with its own --node-rank' })
      .option('node-rank', { type: 'number', default: 0, describe: "This machine's index in a multi-machine run, 0 on the machine that hosts the rendezvous" })
      .option('master-addr', { type: 'string', default: '127.0.0.1', describe: 'Host of rank 0, where the ranks meet (multi-machine runs: its address on the network)' })
      .option('master-port', { type: 'number', describe: 'Port of the rendezvous store on the master host (default: a free port; required with --nnodes > 1)' })
      .option('dist-timeout', { type: 'number', default: 1800, describe: "Seconds a process waits for the others (forming the group, each collective, rank 0's evaluations) before it fails" })
      .check((args) => {
        for (const name of ['config', 'resume'] as const) {
          if (Array.isArray(args[name])) throw new UsageError(`--${name} is given ${(args[name] as unknown as unknown[]).length} times; give it once`);
        }
        if ((args.config === undefined) === (args.resume === undefined)) throw new UsageError('give exactly one of --config FILE or --resume runs/<id>');
        if (args.resume !== undefined && args.set.length > 0) throw new UsageError('--set cannot change a run being resumed (its config.yaml is fixed)');
        if (args['dry-run'] && args.resume !== undefined) throw new UsageError('--dry-run checks a new run: give --config FILE (a run being resumed was checked when it started)');
        if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UsageError(`--threads ${args.threads}: expected a positive integer`);
        for (const name of ['nproc', 'nnodes'] as const) {
          if (!Number.isInteger(args[name]) || args[name] < 1) throw new UsageError(`--${name} ${args[name]}: expected a positive integer`);
        }
        if (!Number.isInteger(args['node-rank']) || args['node-rank'] < 0 || args['node-rank'] >= args.nnodes) throw new UsageError(`--node-rank ${args['node-rank']}: expected an integer in [0, ${args.nnodes}) (--nnodes ${args.nnodes})`);
        if (args['master-port'] !== undefined && (!Number.isInteger(args['master-port']) || args['master-port'] < 1 || args['master-port'] > 65535)) throw new UsageError(`--master-port ${args['master-port']}: expected a TCP port (1 to 65535)`);
        if (args.nnodes > 1 && args['master-port'] === undefined) throw new UsageError(`--nnodes ${args.nnodes} needs --master-port (and --master-addr): every machine must name the same rendezvous`);
        if (!(args['dist-timeout'] > 0)) throw new UsageError(`--dist-timeout ${args['dist-timeout']}: expected a positive number of seconds`);
        if (args['dry-run'] && (args.nproc > 1 || args.nnodes > 1)) throw new UsageError('--dry-run times one process; leave out --nproc and --nnodes');
        return true;
      })
      .epilogue(`Config keys (YAML):\n${configHelpText()}`),
  handler: async (args) => {
    try {
      // THIS_MACHINE: a config this machine cannot run (train.device: cuda without CUDA) fails here, before any data loads.
      const loaded = args.resume !== undefined ? loadResolvedRunConfig(args.resume, THIS_MACHINE) : loadConfig(args.config!, args.set, THIS_MACHINE);
      const launching = (args.nproc > 1 || args.nnodes > 1) && process.env[WORKER_VARIABLE] === undefined;
      if (launching) {
        // The config was checked above, and here what the world size asks of it: a bad one exits 2
        // once, before any worker starts.
        checkParallelRun(loaded.config, args.nproc * args.nnodes, args.resume);
        process.exitCode = await launchWorkers({
          nproc: args.nproc,
          nnodes: args.nnodes,
          nodeRank: args['node-rank'],
          masterAddr: args['master-addr'],
          masterPort: args['master-port'] ?? null,
          script: process.argv[1]!,
          args: process.argv.slice(2),
        });
        return;
      }
      if (args['dry-run']) {
        const report = await dryRunTraining(loaded, { dataRoot: args['data-root'], threads: args.threads });
        process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDryRun(report)}\n`);
        return;
      }
      const summary = await trainRun(loaded, {
        dataRoot: args['data-root'],
        runsRoot: args.runs,
        resumeRun: args.resume,
        threads: args.threads,
        quiet: args.quiet,
        plainProgress: args.quiet || !process.stderr.isTTY,
        mlflow: args['tracking-uri'] === undefined || args['tracking-uri'] === '' ? undefined : { trackingUri: args['tracking-uri'], experiment: args.experiment },
        distTimeoutSeconds: args['dist-timeout'],
      });
      // Rank 0 reports the run; the other ranks' summaries say only that they finished.
      if (args.json && summary.rank === undefined) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      process.exitCode = summary.status === 'diverged' ? 1 : 0;
    } catch (error) {
      if (error instanceof DistributedTrainingError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      if (!reportUserError(error)) throw error;
    }
  },
};
