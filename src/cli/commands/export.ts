/**
 * `kiln export --run runs/<id> [--format onnx|sentence-transformers] [--out DIR] [--quantize int8]
 *              [--opset N] [--operators onnxruntime|onnx] [--eval] [--no-parity] [--threads N]
 *              [--quiet] [--json]`
 *
 * --format onnx (the default) writes Kiln's ONNX model directory (model.onnx, tokenizer.json,
 * model.json) from a trained run, after checking it against the eager model in onnxruntime
 * (src/export/run-export.ts). --format sentence-transformers writes a Hugging Face directory
 * that sentence-transformers and transformers.js load (src/export/sentence-transformers.ts),
 * its onnx/model.onnx checked the same way. Kiln's directory is written in standard operators
 * (onnxruntime fuses them as it loads them) unless --operators onnxruntime asks for its fused
 * contrib operators (Attention, SkipLayerNormalization, …); the sentence-transformers graph is
 * always standard. Bad arguments, a directory that is not a run, or a
 * model the format cannot express exit 2; a failed check exits 1; neither writes.
 * --json prints the result (output directory, format, model id, parity numbers) as one JSON
 * object on stdout instead of the "exported …" line; --quiet drops the progress lines on stderr.
 *
 * @example
 *   kiln export --run runs/jobbert-tiny
 *   kiln export --run runs/jobbert-tiny --format sentence-transformers --out exports/jobbert-st
 */
import type { CommandModule } from 'yargs';

import { ConfigError } from '../../config/index.js';
import { DataError } from '../../data/types.js';
import { UsageError } from '../usage.js';
import { withDerivedRun, numericLeaves } from '../../track/derived.js';
import { StoreError } from '../../track/store.js';
import { applyThreadPolicy } from '../../train/run.js';
import { DEFAULT_OPERATORS, DEFAULT_OPSET, EXPORT_FORMATS, ExportInputError, type ExportFormat } from '../../export/export.js';
import { GRAPH_OPERATORS, type GraphOperators } from '../../export/bert-graph.js';
import { MAX_OPSET, MIN_OPSET } from '../../export/onnx-graph.js';
import { ExportCheckError, exportRun, parityInputsForRun } from '../../export/run-export.js';
import { exportSentenceTransformersRun, SentenceTransformersCheckError } from '../../export/sentence-transformers.js';

interface ExportArgs {
  run: string;
  format: ExportFormat;
  out?: string;
  quantize?: string;
  opset: number;
  operators: GraphOperators;
  eval: boolean;
  parity: boolean;
  'data-root'?: string;
  threads?: number;
  quiet: boolean;
  json: boolean;
}

const isUserError = (error: unknown): boolean => error instanceof ConfigError || error instanceof DataError || error instanceof ExportInputError;

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Export a trained run to ONNX (model.onnx, tokenizer.json, model.json) or a sentence-transformers directory, checked against the eager model',
  builder: (y) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'Run directory, e.g. runs/twotower-20261123-101500' })
      .option('format', {
        type: 'string',
        choices: EXPORT_FORMATS,
        default: 'onnx' as ExportFormat,
        describe: "onnx: Kiln's directory for kiln embed/serve; sentence-transformers: a Hugging Face directory for sentence-transformers and transformers.js (two-tower, shared tower, cosine or dot head)",
      })
      .option('out', { type: 'string', describe: 'Output directory (default: <run>/onnx, <run>/onnx-int8 with --quantize int8, <run>/sentence-transformers)' })
      .option('quantize', { type: 'string', choices: ['int8'], describe: 'Dynamic int8 quantisation of the linear layers and the word embeddings (--format onnx)' })
      .option('opset', { type: 'number', default: DEFAULT_OPSET, describe: `ONNX opset (${MIN_OPSET}–${MAX_OPSET})` })
      .option('operators', {
        type: 'string',
        choices: GRAPH_OPERATORS,
        default: DEFAULT_OPERATORS,
        describe: "onnx: standard operators, which onnxruntime fuses as it loads them (measured faster here) and other runtimes read; onnxruntime: onnxruntime's fused contrib operators (--format onnx; a sentence-transformers export is always standard)",
      })
      .option('eval', { type: 'boolean', default: false, describe: "Also evaluate eager and exported models on the run's full evaluation splits (int8: main metric at most 1 point lower; --format onnx)" })
      .option('parity', { type: 'boolean', default: true, describe: 'Check the export against the eager model (--no-parity skips it)' })
      .option('data-root', { type: 'string', describe: 'Data root for the parity texts and --eval (default: $KILN_DATA)' })
      .option('threads', { type: 'number', describe: "Compute threads for the parity check and --eval: libtorch's for the eager model, onnxruntime's for the export (default: each library's own, all cores)" })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress lines (parity, --eval metrics) on stderr; the result and errors still print' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result (output directory, format, model id, parity numbers) as one JSON object on stdout' })
      .check((args) => {
        if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UsageError(`--threads ${args.threads}: expected a positive integer`);
        if (!Number.isInteger(args.opset) || args.opset < MIN_OPSET || args.opset > MAX_OPSET) throw new UsageError(`--opset ${args.opset}: expected an integer from ${MIN_OPSET} to ${MAX_OPSET}`);
        if (args.format === 'sentence-transformers') {
          if (args.quantize !== undefined) throw new UsageError('--quantize applies to --format onnx; a sentence-transformers export is fp32 (model.safetensors and onnx/model.onnx)');
          if (args.eval) throw new UsageError("--eval applies to --format onnx; export that format to compare the run's metrics, or check a sentence-transformers export by parity (the default)");
        }
        return true;
      }),
  handler: async (args) => {
    const started = performance.now();
    const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
    const log = (line: string): void => {
      if (!args.quiet) process.stderr.write(`${line}\n`);
    };
    // The eager side of the parity check and --eval runs in fp32; an explicit --threads sets
    // libtorch's pool as `kiln eval` and `kiln train` do. Without it libtorch keeps its default,
    // as exports always have.
    if (args.threads !== undefined) applyThreadPolicy(args.threads, 'fp32');
    try {
      const params = { format: JSON.stringify(args.format), quantize: JSON.stringify(args.quantize ?? 'none'), opset: JSON.stringify(args.opset), operators: JSON.stringify(args.operators), parity: JSON.stringify(args.parity), eval: JSON.stringify(args.eval) };
      if (args.format === 'sentence-transformers') {
        const exportIt = (): ReturnType<typeof exportSentenceTransformersRun> =>
          exportSentenceTransformersRun(args.run, { outDir: args.out, opset: args.opset, skipParity: !args.parity, parityInputs: () => parityInputsForRun(args.run, args['data-root']), log, threads: args.threads });
        const result = await withDerivedRun(args.run, 'export', params, exportIt, (r) => ({ path: r.outDir, results: numericLeaves({ parity: r.parity ?? {} }), message: r.modelId }), isUserError);
        const prompts = Object.keys(result.prompts);
        if (args.json) {
          const report = {
            outDir: result.outDir,
            format: args.format,
            modelId: result.modelId,
            pooling: result.pooling,
            normalized: result.normalized,
            maxSeqLength: result.maxSeqLength,
            prompts: result.prompts,
            parity: result.parity ?? null,
            seconds: Number(seconds()),
          };
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          `exported ${result.modelId} (sentence-transformers: ${result.pooling} pooling${result.normalized ? ', normalised' : ''}, max_seq_length ${result.maxSeqLength}, prompts ${prompts.length === 0 ? 'none' : prompts.join(', ')}) to ${result.outDir} in ${seconds()} s\n`,
        );
        return;
      }
      const exportIt = (): ReturnType<typeof exportRun> =>
        exportRun(args.run, {
          outDir: args.out,
          quantize: args.quantize === 'int8' ? 'int8' : 'none',
          opset: args.opset,
          operators: args.operators,
          dataRoot: args['data-root'],
          skipParity: !args.parity,
          evaluate: args.eval,
          log,
          threads: args.threads,
        });
      const result = await withDerivedRun(args.run, 'export', params, exportIt, (r) => ({ path: r.outDir, results: numericLeaves(r.card.checks ?? {}), message: r.card.modelId }), isUserError);
      const card = result.card;
      if (args.json) {
        const report = {
          outDir: result.outDir,
          format: args.format,
          modelId: card.modelId,
          kind: card.kind,
          parameters: card.parameters,
          opset: card.opset,
          quantization: card.quantization,
          // The card's checks: parity (inputs, max |Δ|, min cosine, passed) and, with --eval, the metrics.
          checks: card.checks ?? null,
          seconds: Number(seconds()),
        };
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `exported ${card.modelId} (${card.kind}, ${card.parameters.toLocaleString('en-US')} parameters, opset ${card.opset}, ${card.quantization === 'int8' ? 'int8' : 'fp32'}) to ${result.outDir} in ${seconds()} s\n`,
      );
    } catch (error) {
      if (error instanceof ExportCheckError || error instanceof SentenceTransformersCheckError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      if (isUserError(error) || error instanceof StoreError) {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};
