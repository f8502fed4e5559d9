/**
 * `kiln info`: what the engine was built against and what it can use here: the libtorch
 * version, CUDA (compiled in, available, device count), oneDNN and the thread pools.
 *
 * @example
 * $ kiln info
 * $ kiln info --json
 */
import type { CommandModule } from 'yargs';
import { buildInfo, getNumThreads } from '../../engine/runtime.js';
import { KILN_VERSION } from '../../version.js';

interface InfoArgs {
  json: boolean;
}

export const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  describe: 'Show the libtorch build, CUDA availability and thread settings',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'Print machine-readable JSON' }),
  handler: (args) => {
    const info = buildInfo();
    const summary = {
      kiln: KILN_VERSION,
      node: process.version,
      libtorch: info.torchVersion,
      cudaCompiled: info.cudaCompiled,
      cudaAvailable: info.cudaAvailable,
      cudaDevices: info.cudaDeviceCount,
      oneDNN: info.mkldnn,
      intraOpThreads: getNumThreads(),
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    for (const [key, value] of Object.entries(summary)) process.stdout.write(`${key.padEnd(16)} ${String(value)}\n`);
  },
};
