/**
 * `kiln train --nproc N`: starts N local worker processes of the same command, as
 * `torchrun --nproc-per-node N` does, each with torchrun's variables
 * (https://pytorch.org/docs/stable/elastic/run.html, "Environment Variables"):
 *
 *   WORLD_SIZE        nnodes · N               RANK        node_rank · N + i
 *   LOCAL_RANK        i                        LOCAL_WORLD_SIZE  N
 *   MASTER_ADDR/PORT  the rendezvous store (rank 0 hosts it); a free local port by default
 *
 * and a share of the cores: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = cores / N (torchrun sets
 * OMP_NUM_THREADS too, to 1), unless the user set them. Several machines run the same command
 * with --nnodes, --node-rank and the first machine's --master-addr and --master-port.
 *
 * When a worker fails, the others are given `graceMs` to notice it themselves (their next
 * collective fails at once on a closed connection, and they report it), then stopped; the
 * launcher exits with the first failure's code. SIGINT and SIGTERM are passed on to the workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

export interface LaunchOptions {
  /** Worker processes on this machine. */
  nproc: number;
  /** Machines in the job. */
  nnodes: number;
  /** This machine's index, in [0, nnodes). */
  nodeRank: number;
  masterAddr: string;
  /** null: a free port on this machine (one machine only). */
  masterPort: number | null;
  /** The worker command: the script and its arguments (node's own flags are added). */
  script: string;
  args: readonly string[];
  /** How long the other workers get to report a peer's failure before they are stopped. */
  graceMs?: number;
  write?: (line: string) => void;
}

/** Set in every worker's environment, so that it trains instead of launching again. */
export const WORKER_VARIABLE = 'KILN_LAUNCHED_WORKER';

/** A TCP port that was free a moment ago (the store binds it right after; torchrun does the same). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts the workers and resolves to the launcher's exit code (0 when every worker succeeded). */
export async function launchWorkers(options: LaunchOptions): Promise<number> {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const graceMs = options.graceMs ?? 15_000;
  const masterPort = options.masterPort ?? (await freePort());
  const worldSize = options.nnodes * options.nproc;
  const threads = String(Math.max(1, Math.floor(availableParallelism() / options.nproc)));
  const workers: Array<{ rank: number; child: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> = [];
  for (let local = 0; local < options.nproc; local++) {
    const rank = options.nodeRank * options.nproc + local;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [WORKER_VARIABLE]: '1',
      WORLD_SIZE: String(worldSize),
      RANK: String(rank),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(options.nproc),
      GROUP_RANK: String(options.nodeRank),
      MASTER_ADDR: options.masterAddr,
      MASTER_PORT: String(masterPort),
      OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? threads,
      OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? threads,
    };
    const child = spawn(process.execPath, [...process.execArgv, options.script, ...options.args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    workers.push({ rank, child, exit });
  }
  write(`launched ${options.nproc} worker(s) of ${worldSize} on ${options.masterAddr}:${masterPort}: ${workers.map((w) => `rank ${w.rank} pid ${w.child.pid}`).join(', ')}`);

  const forward = (signal: NodeJS.Signals): void => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  };
  const onSigint = (): void => forward('SIGINT');
  const onSigterm = (): void => forward('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);

  let firstFailure: { rank: number; code: number; how: string } | null = null;
  let stopTimer: NodeJS.Timeout | null = null;
  try {
    await Promise.all(
      workers.map(async (w) => {
        const { code, signal } = await w.exit;
        if (code === 0) return;
        if (firstFailure === null) {
          firstFailure = { rank: w.rank, code: code ?? 1, how: signal !== null ? `was killed by ${signal}` : `exited with code ${code}` };
          if (signal !== null) write(`rank ${w.rank} (pid ${w.child.pid}) was killed by ${signal}`);
          // The others fail on their own at their next collective; those that do not (busy in a
          // long evaluation) are stopped after the grace period.
          stopTimer = setTimeout(() => forward('SIGTERM'), graceMs);
        }
      }),
    );
  } finally {
    if (stopTimer !== null) clearTimeout(stopTimer);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
  const failure = firstFailure as { rank: number; code: number; how: string } | null;
  if (failure === null) return 0;
  write(`training failed: rank ${failure.rank} ${failure.how}`);
  return failure.code;
}
