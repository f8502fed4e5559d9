/**
 * `kiln embed --model DIR --input FILE(.jsonl|.csv|.arrow) --out FILE.arrow [--previous FILE.arrow]
 *            [--shard i/n] [--side query|doc] [--type INPUT_TYPE] [--id-field NAME]
 *            [--text-field NAME] [--batch-size N] [--threads N] [--quiet] [--json]`
 *
 * Embeds a file with an exported model (`kiln export`'s directory, run by onnxruntime) into an
 * Arrow file of (id, content_hash, model_id, vector). With --previous, vectors of unchanged
 * texts are copied from an earlier output instead of recomputed; --shard splits the rows across
 * machines by a hash of their id. The output is written atomically: a failed run leaves the
 * old one in place. All the logic is in src/serve/embed.ts.
 *
 * Exit codes: 0 done (bad rows are reported on stderr and skipped); 2 a usage, input or model
 * problem (missing file or column, bad --shard, a cross-encoder), and nothing is written.
 *
 * @example
 *   kiln embed --model exports/jobbert --input titles.csv --text-field vacancyTitle --out titles.arrow
 *   kiln embed --model exports/jobbert --input titles.csv --text-field vacancyTitle --out titles.arrow --previous titles.arrow
 */
import type { CommandModule } from 'yargs';

import { ConfigError } from '../../config/index.js';
import { DataError } from '../../data/types.js';
import { EmbedError, embedFile, formatSummary, parseShard } from '../../serve/embed.js';
import type { Side } from '../../serve/exported-model.js';
import { trainingRunGivenAsModel } from '../../track/run-dir.js';
import { UsageError } from '../usage.js';

interface EmbedArgs {
  model: string;
  input: string;
  out: string;
  previous?: string;
  shard?: string;
  side: Side;
  type?: string;
  'id-field'?: string;
  'text-field': string;
  'batch-size': number;
  threads?: number;
  quiet: boolean;
  json: boolean;
}

export const embedCommand: CommandModule<object, EmbedArgs> = {
  command: 'embed',
  describe: 'Embed a JSONL/CSV/Arrow file with an exported model into an Arrow file (reusing unchanged vectors)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Exported model directory (kiln export: model.json, tokenizer.json, *.onnx)' })
      .option('input', { type: 'string', demandOption: true, describe: 'Rows to embed: .jsonl (one object per line), .csv (header line) or .arrow' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output Arrow file (id, content_hash, model_id, vector); replaced atomically' })
      .option('previous', { type: 'string', describe: 'An earlier output: vectors of unchanged texts are reused (may be the same file as --out)' })
      .option('shard', { type: 'string', describe: 'i/n: embed only the rows whose id hashes to shard i of n (0 ≤ i < n)' })
      .option('side', { type: 'string', choices: ['query', 'doc'] as const, default: 'doc' as Side, describe: 'Which tower embeds the texts' })
      .option('type', { type: 'string', describe: "Input type whose prompt applies (the model card's prompts, e.g. title)" })
      .option('id-field', { type: 'string', describe: 'Id column/key (default: id; without one, the 1-based data row number)' })
      .option('text-field', { type: 'string', default: 'text', describe: 'Text column/key' })
      .option('batch-size', { type: 'number', default: 64, describe: 'Texts per onnxruntime call' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress bar or progress lines on stderr; notes about the input, the summary and errors still print' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary (rows read, reused, computed, …) as JSON on stdout' })
      .check((args) => {
        try {
          if (args.shard !== undefined) parseShard(args.shard);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        if (!Number.isInteger(args['batch-size']) || args['batch-size'] < 1) throw new UsageError(`--batch-size ${args['batch-size']}: expected a positive integer`);
        if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UsageError(`--threads ${args.threads}: expected a positive integer`);
        const trainingRun = trainingRunGivenAsModel('--model', args.model);
        if (trainingRun !== null) throw new UsageError(trainingRun);
        return true;
      }),
  handler: async (args) => {
    // Ctrl-C or a kill: exit through process.exit so the writer's exit hook removes its temp file
    // (the old output is never touched before the final rename).
    const onSignal = (signal: NodeJS.Signals): void => {
      process.stderr.write(`\nkiln embed: ${signal}; nothing written\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const summary = await embedFile({
        model: args.model,
        input: args.input,
        out: args.out,
        previous: args.previous,
        shard: args.shard,
        side: args.side,
        inputType: args.type,
        idField: args['id-field'],
        textField: args['text-field'],
        batchSize: args['batch-size'],
        threads: args.threads,
        progress: args.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'plain',
      });
      process.stdout.write(args.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary).join('\n')}\n`);
    } catch (error) {
      if (error instanceof EmbedError || error instanceof DataError || error instanceof ConfigError) {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  },
};
