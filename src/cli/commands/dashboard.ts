/**
 * `kiln dashboard [--port 8600] [--host 127.0.0.1] [--runs DIR] [--json]`: the run store as a local web
 * page (src/track/dashboard/): the run table, curves, params diff, parallel coordinates and a
 * detail page per run, live while runs train. Binds 127.0.0.1 unless --host says otherwise.
 * Ctrl-C (SIGINT) or SIGTERM closes it.
 */
import type { CommandModule } from 'yargs';

import { buildDashboard } from '../../track/dashboard/server.js';
import { StoreError } from '../../track/store.js';

interface DashboardArgs {
  port: number;
  host: string;
  runs: string;
  json: boolean;
}

export const dashboardCommand: CommandModule<object, DashboardArgs> = {
  command: 'dashboard',
  describe: 'Serve a local web page to compare runs (runs/kiln.db)',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 8600, describe: 'Port (0 picks a free one)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to bind (0.0.0.0 exposes it to the network)' })
      .option('runs', { type: 'string', default: 'runs', describe: 'Directory that holds run directories and kiln.db' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the address as one JSON line {url, runs} once listening (for scripts with --port 0)' }),
  handler: async (args) => {
    let dashboard: ReturnType<typeof buildDashboard>;
    try {
      dashboard = buildDashboard({ runsRoot: args.runs });
    } catch (error) {
      if (error instanceof StoreError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw error;
    }
    const address = await dashboard.app.listen({ port: args.port, host: args.host });
    process.stdout.write(args.json ? `${JSON.stringify({ url: `${address}/`, runs: dashboard.store.root })}\n` : `kiln dashboard: ${address}/ (runs in ${dashboard.store.root}; Ctrl-C stops it)\n`);
    await new Promise<void>((resolvePromise) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void dashboard.app.close().then(() => resolvePromise());
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
