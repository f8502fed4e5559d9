/**
 * `kiln export --run runs/<id> [--out DIR] [--quantize int8] [--opset N] [--eval] [--no-parity]`
 *
 * Writes an ONNX model directory (model.onnx, tokenizer.json, model.json) from a trained run,
 * after checking it against the eager model in onnxruntime (src/export/run-export.ts). Bad
 * arguments or a directory that is not a run exit 2; a failed check exits 1; neither writes.
 */
import type { CommandModule } from 'yargs';

import { ConfigError } from '../../config/index.js';
import { DataError } from '../../data/types.js';
import { UsageError } from '../usage.js';
import { withDerivedRun, numericLeaves } from '../../track/derived.js';
import { StoreError } from '../../track/store.js';
import { DEFAULT_OPSET, ExportInputError } from '../../export/export.js';
import { MAX_OPSET, MIN_OPSET } from '../../export/onnx-graph.js';
import { ExportCheckError, exportRun } from '../../export/run-export.js';

interface ExportArgs {
  run: string;
  out?: string;
  quantize?: string;
  opset: number;
  eval: boolean;
  parity: boolean;
  'data-root'?: string;
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Export a trained run to ONNX (model.onnx, tokenizer.json, model.json), checked against the eager model',
  builder: (y) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'Run directory, e.g. runs/twotower-20261123-101500' })
      .option('out', { type: 'string', describe: 'Output directory (default: <run>/onnx, or <run>/onnx-int8 with --quantize int8)' })
      .option('quantize', { type: 'string', choices: ['int8'], describe: 'Dynamic int8 quantisation of the linear layers and the word embeddings' })
      .option('opset', { type: 'number', default: DEFAULT_OPSET, describe: `ONNX opset (${MIN_OPSET}–${MAX_OPSET})` })
      .option('eval', { type: 'boolean', default: false, describe: "Also evaluate eager and exported models on the run's full evaluation splits (int8: main metric at most 1 point lower)" })
      .option('parity', { type: 'boolean', default: true, describe: 'Check the export against the eager model (--no-parity skips it)' })
      .option('data-root', { type: 'string', describe: "Data root for the parity texts and --eval (default: $KILN_DATA)" })
      .check((args) => {
        if (!Number.isInteger(args.opset) || args.opset < MIN_OPSET || args.opset > MAX_OPSET) throw new UsageError(`--opset ${args.opset}: expected an integer from ${MIN_OPSET} to ${MAX_OPSET}`);
        return true;
      }),
  handler: async (args) => {
    const started = performance.now();
    try {
      const params = { quantize: JSON.stringify(args.quantize ?? 'none'), opset: JSON.stringify(args.opset), parity: JSON.stringify(args.parity), eval: JSON.stringify(args.eval) };
      const exportIt = (): ReturnType<typeof exportRun> =>
        exportRun(args.run, {
          outDir: args.out,
          quantize: args.quantize === 'int8' ? 'int8' : 'none',
          opset: args.opset,
          dataRoot: args['data-root'],
          skipParity: !args.parity,
          evaluate: args.eval,
          log: (line) => process.stderr.write(`${line}\n`),
        });
      const result = await withDerivedRun(args.run, 'export', params, exportIt, (r) => ({ path: r.outDir, results: numericLeaves(r.card.checks ?? {}), message: r.card.modelId }), (error) => error instanceof ConfigError || error instanceof DataError || error instanceof ExportInputError);
      const card = result.card;
      process.stdout.write(
        `exported ${card.modelId} (${card.kind}, ${card.parameters.toLocaleString('en-US')} parameters, opset ${card.opset}, ${card.quantization === 'int8' ? 'int8' : 'fp32'}) to ${result.outDir} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } catch (error) {
      if (error instanceof ExportCheckError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      if (error instanceof ConfigError || error instanceof DataError || error instanceof ExportInputError || error instanceof StoreError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};
