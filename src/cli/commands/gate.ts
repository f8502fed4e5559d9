/**
 * `kiln gate --run DIR --baseline quality/<name>.json`: fails (exit 1) when a run, or its ONNX
 * export, is worse than a committed baseline by more than the baseline's tolerance
 * (src/track/gate.ts), printing the regressions; exit 0 prints every change. A missing metric,
 * a missing or malformed baseline, or an unfinished run is an error (exit 2), never a pass.
 *
 * `--update` rewrites the baseline deliberately and prints the diff. With several `--run`s (the
 * same config under different seeds) it also sets each tolerance from their spread.
 *
 * @example
 * $ kiln gate --run exports/ci-twotower --baseline quality/ci-twotower.json
 * $ kiln gate --update --run runs/a --run runs/b --run runs/c --baseline quality/ci-twotower.json
 */
import { existsSync } from 'node:fs';
import type { CommandModule } from 'yargs';

import { calibrate, formatMetricValue, GateError, readBaseline, readGateMetrics, runGate, writeBaseline, type Baseline, type GateRow } from '../../track/gate.js';
import { formatTable } from '../table.js';
import { UsageError } from '../usage.js';

interface GateArgs {
  run: string[];
  baseline: string;
  update: boolean;
  factor: number;
  floor: number;
  description?: string;
  json: boolean;
}

const signed = (gain: number): string => `${gain >= 0 ? '+' : '−'}${formatMetricValue(Math.abs(gain))}`;

function gateTable(rows: readonly GateRow[]): string {
  return formatTable(
    ['metric', 'baseline', 'value', 'change', 'tolerance', 'status'],
    rows.map((r) => [r.metric, formatMetricValue(r.baseline), formatMetricValue(r.value), signed(r.gain), formatMetricValue(r.tolerance), r.status === 'regressed' ? 'REGRESSED' : r.status]),
    [false, true, true, true, true, false],
  );
}

function diffTable(before: Baseline | undefined, after: Baseline): string {
  const rows = Object.entries(after.metrics).map(([metric, next]) => {
    const prior = before?.metrics[metric];
    return [
      metric,
      prior === undefined ? '-' : formatMetricValue(prior.value),
      formatMetricValue(next.value),
      prior === undefined ? 'new' : signed(next.direction === 'higher' ? next.value - prior.value : prior.value - next.value),
      prior === undefined ? '-' : formatMetricValue(prior.tolerance),
      formatMetricValue(next.tolerance),
      next.spread === undefined ? '-' : formatMetricValue(next.spread),
    ];
  });
  const dropped = Object.keys(before?.metrics ?? {}).filter((m) => after.metrics[m] === undefined);
  return [
    formatTable(['metric', 'old value', 'new value', 'change', 'old tolerance', 'new tolerance', 'spread'], rows, [false, true, true, true, true, true, true]),
    ...(dropped.length > 0 ? [`no longer gated: ${dropped.join(', ')}`] : []),
  ].join('\n');
}

export const gateCommand: CommandModule<object, GateArgs> = {
  command: 'gate',
  describe: 'Fail when a run or its export is worse than a committed quality baseline',
  builder: (y) =>
    y
      .option('run', { type: 'string', array: true, default: [] as string[], describe: 'A run directory (runs/<id>) or an export directory evaluated by `kiln export --eval`; several with --update to calibrate' })
      .option('baseline', { type: 'string', demandOption: true, describe: 'The baseline file, e.g. quality/ci-twotower.json' })
      .option('update', { type: 'boolean', default: false, describe: 'Rewrite the baseline from the run(s) and print the diff (several runs also set each tolerance from their spread)' })
      .option('factor', { type: 'number', default: 2.5, describe: 'With --update and several runs: tolerance = factor × (max − min) over the runs' })
      .option('floor', { type: 'number', default: 0.002, describe: 'With --update: the smallest tolerance, so a spread of zero does not fail on the last digit' })
      .option('description', { type: 'string', describe: 'With --update: what the baseline gates (kept from the old file otherwise)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON' })
      .check((args) => {
        if (args.run.length === 0) throw new UsageError('give --run DIR (a run or an export directory)');
        if (!args.update && args.run.length > 1) throw new UsageError('several --run only with --update (calibration); gate one run at a time');
        if (!(args.factor > 0)) throw new UsageError(`--factor ${args.factor}: expected a positive number`);
        if (!(args.floor >= 0)) throw new UsageError(`--floor ${args.floor}: expected a number ≥ 0`);
        return true;
      }),
  handler: (args) => {
    try {
      const runs = args.run.map(readGateMetrics);
      if (args.update) {
        const previous = existsSync(args.baseline) ? readBaseline(args.baseline) : undefined;
        const sources = new Set(runs.map((r) => r.source));
        if (sources.size > 1) throw new GateError('--update: mix of runs and exports; calibrate one kind');
        const next = calibrate(runs, { factor: args.factor, floor: args.floor, source: runs[0]!.source, previous, description: args.description });
        writeBaseline(args.baseline, next);
        process.stdout.write(args.json ? `${JSON.stringify({ before: previous ?? null, after: next }, null, 2)}\n` : `${args.baseline}: ${previous === undefined ? 'created' : 'updated'} from ${runs.length} run(s)\n${diffTable(previous, next)}\n`);
        return;
      }
      const baseline = readBaseline(args.baseline);
      const result = runGate(baseline, runs[0]!, args.baseline);
      if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        const verdict = result.passed
          ? `gate passed: ${runs[0]!.path} against ${args.baseline}`
          : `gate FAILED: ${result.regressions.length} metric(s) regressed beyond tolerance (${result.regressions.map((r) => r.metric).join(', ')})`;
        process.stdout.write(`${gateTable(result.passed ? result.rows : result.regressions)}\n${result.passed ? '' : `\nall metrics:\n${gateTable(result.rows)}\n`}${verdict}\n`);
      }
      process.exitCode = result.passed ? 0 : 1;
    } catch (error) {
      if (error instanceof GateError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
  },
};
