/**
 * A benchmark worker over JSON lines: each request is one line on the child's stdin, each reply
 * one line on its stdout, answered in order. The PyTorch references (`--serve`) and Kiln's own
 * per-configuration workers speak it, so both sides are timed in processes of their own.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export class WorkerProcess {
  readonly #pending: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  readonly #child;
  #exited: Error | null = null;

  /** `hint` is added to a failure to start (e.g. how to point at a Python with torch). */
  constructor(
    readonly name: string,
    command: string,
    args: string[],
    hint = '',
  ) {
    this.#child = spawn(command, args, { env: process.env, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: this.#child.stdout });
    lines.on('line', (line) => this.#pending.shift()?.resolve(line));
    const fail = (error: Error): void => {
      this.#exited = error;
      for (const p of this.#pending.splice(0)) p.reject(error);
    };
    this.#child.on('error', (e) => fail(new Error(`could not run ${command}: ${e.message}${hint === '' ? '' : ` (${hint})`}`)));
    this.#child.on('exit', (code, signal) => fail(new Error(`${name} worker exited (${String(code ?? signal)})`)));
  }

  async request<T>(message: Record<string, unknown>): Promise<T> {
    if (this.#exited !== null) throw this.#exited;
    const line = await new Promise<string>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.stdin.write(JSON.stringify(message) + '\n');
    });
    const reply = JSON.parse(line) as T & { error?: string };
    if (reply.error !== undefined) throw new Error(`${this.name}: ${reply.error}`);
    return reply;
  }

  /** Asks the worker to quit and waits for it to exit. */
  async close(): Promise<void> {
    if (this.#exited !== null) return;
    const done = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    await done;
  }
}
