/**
 * `kiln info`: what the engine was built against and what it can use here: the libtorch
 * version, CUDA (compiled in, available, device count), oneDNN, the thread pools and the
 * CPU's bf16 instruction.
 *
 * @example
 * $ kiln info
 * $ kiln info --json
 */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { allocatorSetting, buildInfo, cpuBf16Instruction, getNumThreads } from '../../engine/runtime.js';
import { KILN_VERSION } from '../../version.js';

/**
 * The BLAS library this process has mapped (Linux), or 'unknown'. It matters: Debian's libtorch
 * with the reference BLAS runs a 1024³ matmul about 40 times slower than with OpenBLAS.
 */
function loadedBlas(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const paths = new Set(maps.split('\n').map((line) => line.slice(line.indexOf('/'))).filter((path) => /blas/i.test(path)));
    return paths.size > 0 ? [...paths].join(', ') : 'none mapped';
  } catch {
    return 'unknown';
  }
}

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
      // What train.precision: auto reads: bf16 only with one of these instructions.
      cpuBf16: cpuBf16Instruction() ?? 'none (auto precision trains in fp32 on this CPU)',
      blas: loadedBlas(),
      malloc: allocatorSetting(),
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    for (const [key, value] of Object.entries(summary)) process.stdout.write(`${key.padEnd(16)} ${String(value)}\n`);
  },
};
