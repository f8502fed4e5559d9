/**
 * `kiln data inspect --config FILE [--set key=value ...] [--data-root DIR] [--samples N] [--json]`
 *
 * Loads every training and evaluation recipe of a config as a run would, and prints per recipe
 * the rows read and skipped (with the reasons), duplicates, token-length percentiles after the
 * prompt template, the share truncated at `data.max_length`, and sample pairs as the model sees
 * them (src/train/inspect-data.ts). Writes nothing. A bad config or data file exits 2.
 *
 * @example
 * $ kiln data inspect --config configs/examples/own-pairs.yaml
 */
import type { CommandModule } from 'yargs';

import { loadConfig } from '../../config/index.js';
import { formatInspection, inspectData } from '../../train/inspect-data.js';
import { reportUserError, UsageError } from '../usage.js';

interface InspectArgs {
  config: string;
  set: string[];
  'data-root'?: string;
  samples: number;
  json: boolean;
  quiet: boolean;
}

const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect',
  describe: "Show what a config's data looks like to the model: rows, skips, duplicates, token lengths, samples",
  builder: (y) =>
    y
      .option('config', { type: 'string', demandOption: true, describe: 'YAML run config' })
      .option('set', { type: 'string', array: true, default: [], describe: 'Override a config value, e.g. --set data.max_length=64 (repeatable)' })
      .option('data-root', { type: 'string', describe: 'Data root (default: $KILN_DATA)' })
      .option('samples', { type: 'number', default: 5, describe: 'Sample pairs to print per recipe' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Accepted for agreement with the other commands; the report is the only output' })
      .check((args) => {
        if (!Number.isInteger(args.samples) || args.samples < 0) throw new UsageError(`--samples must be a non-negative integer, got ${args.samples}`);
        return true;
      }),
  handler: async (args) => {
    try {
      const { config } = loadConfig(args.config, args.set);
      const report = await inspectData(config, { dataRoot: args['data-root'], samples: args.samples });
      process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspection(report)}\n`);
    } catch (error) {
      if (!reportUserError(error)) throw error;
    }
  },
};

export const dataCommand: CommandModule<object, object> = {
  command: 'data <command>',
  describe: "Look at a config's data before training (kiln data inspect)",
  builder: (y) => y.command(inspectCommand as unknown as CommandModule<object, object>).demandCommand(1, 'Name a subcommand: kiln data inspect'),
  handler: () => undefined,
};
