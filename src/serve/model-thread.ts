/**
 * The served model in a worker thread, so that onnxruntime's runs leave the HTTP thread free.
 *
 * Why: onnxruntime-node's `session.run` is asynchronous in name only: it runs the graph on the
 * calling thread (after a setImmediate). In `kiln serve` that thread also parses every request
 * and serialises every response, so while the model computes a batch, no request is read and no
 * answer is written, and under load the service tops out well below what the model computes
 * offline. In a worker, the model computes one batch while the HTTP thread parses the requests
 * that will make the next one, and writes the answers to the last.
 *
 * The worker loads an `ExportedModel` (./exported-model.ts) from the export directory and answers
 * `{id, op: 'embed', texts, side, inputType}` with one flat float32 buffer of n × dimension
 * values, and `{id, op: 'score', pairs}` with n scores; the buffers are transferred, not copied.
 * The HTTP thread keeps the card and the tokenizer (`readExport`) for what must be answered
 * synchronously: the model id, its dimension, and the token counts of POST /v1/embeddings.
 * One model call at a time is the server's rule already (its MicroBatcher), so one worker is all
 * a model needs. When the module runs as the worker (it is its own entry point), it serves;
 * imported, it exports `ModelThread`.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import type { ModelCard } from '../export/card.js';
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import { embeddingTokenCounts, ExportedModel, readExport, twoTowerCard, type EmbedRequest, type LoadOptions } from './exported-model.js';
import { workerEntry } from './worker-entry.js';

interface WorkerInput {
  kilnModelThread: true;
  dir: string;
  options: LoadOptions;
}
type Call = { op: 'embed'; texts: readonly string[]; request: EmbedRequest } | { op: 'score'; pairs: ReadonlyArray<readonly [string, string]> };
type Request = Call & { id: number };
type Reply = { id: number; values: Float32Array } | { id: number; error: string } | { ready: true } | { failed: string };

if (!isMainThread && parentPort !== null && (workerData as Partial<WorkerInput> | null)?.kilnModelThread === true) {
  const port = parentPort;
  const input = workerData as WorkerInput;
  void (async () => {
    let model: ExportedModel;
    try {
      model = await ExportedModel.load(input.dir, input.options);
    } catch (error) {
      port.postMessage({ failed: (error as Error).message } satisfies Reply);
      return;
    }
    const width = model.dimension;
    // Requests are answered one at a time, in order: onnxruntime's intra-op threads already
    // use the cores given to it, and the server sends one call at a time anyway.
    let chain = Promise.resolve();
    port.on('message', (request: Request | 'release') => {
      if (request === 'release') {
        chain = chain.then(async () => {
          await model.release();
          port.close();
        });
        return;
      }
      chain = chain.then(async () => {
        try {
          let values: Float32Array;
          if (request.op === 'embed') {
            const vectors = await model.embed(request.texts, request.request);
            values = new Float32Array(vectors.length * width);
            vectors.forEach((vector, row) => values.set(vector, row * width));
          } else {
            values = await model.score(request.pairs);
          }
          port.postMessage({ id: request.id, values } satisfies Reply, [values.buffer as ArrayBuffer]);
        } catch (error) {
          port.postMessage({ id: request.id, error: (error as Error).message } satisfies Reply);
        }
      });
    });
    port.postMessage({ ready: true } satisfies Reply);
  })();
}

interface Waiting {
  resolve(values: Float32Array): void;
  reject(error: Error): void;
}

/** An exported model whose graphs run in a worker thread; the same surface as ExportedModel for serving. */
export class ModelThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Waiting>();
  #nextId = 0;
  /** Set once the worker has died or been released: every later call rejects with it. */
  #gone: Error | undefined;
  /** Why the worker died without being released (an exception, or its exit): /healthz reports it. */
  #failure: Error | undefined;
  #released: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    readonly card: ModelCard,
    readonly tokenizer: WordPieceTokenizer,
    worker: Worker,
  ) {
    this.#worker = worker;
    worker.on('message', (reply: Reply) => {
      if (!('id' in reply)) return;
      const waiting = this.#pending.get(reply.id);
      if (waiting === undefined) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.values);
    });
    const die = (why: Error): void => {
      if (this.#released === undefined) this.#failure ??= why;
      this.#gone ??= why;
      for (const waiting of this.#pending.values()) waiting.reject(this.#gone);
      this.#pending.clear();
    };
    worker.on('error', (error) => die(new Error(`the model thread failed: ${error.message}`)));
    worker.on('exit', (code) => die(new Error(`the model thread exited (code ${code})`)));
  }

  /** Starts the worker and resolves once it has loaded the model (or rejects with why it could not). */
  static async load(dir: string, options: LoadOptions = {}): Promise<ModelThread> {
    const { root, card, tokenizer } = readExport(dir);
    const { entry, eval: evaluate } = workerEntry(import.meta.url);
    const worker = new Worker(entry, { workerData: { kilnModelThread: true, dir: root, options: { ...options } } satisfies WorkerInput, eval: evaluate });
    // Only this function's own listeners come off afterwards: Worker keeps internal ones (its
    // message port is started and referenced through 'newListener').
    let onMessage: ((reply: Reply) => void) | undefined;
    let onError: ((error: Error) => void) | undefined;
    let onExit: ((code: number) => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        onMessage = (reply) => {
          if ('ready' in reply) resolve();
          else if ('failed' in reply) reject(new Error(reply.failed));
        };
        onError = (error) => reject(new Error(`the model thread failed to start: ${error.message}`));
        onExit = (code) => reject(new Error(`the model thread exited while loading ${root} (code ${code})`));
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      });
    } catch (error) {
      await worker.terminate();
      throw error;
    } finally {
      worker.off('message', onMessage!).off('error', onError!).off('exit', onExit!);
    }
    return new ModelThread(root, card, tokenizer, worker);
  }

  /** Why the model thread died, if it did without being released; every call now fails with it. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  get modelId(): string {
    return this.card.modelId;
  }

  /** Width of an embedding (0 for a cross-encoder, which has none). */
  get dimension(): number {
    return this.card.kind === 'two-tower' ? this.card.dimension : 0;
  }

  /** One vector per text, in input order: views into one buffer the worker computed. */
  async embed(texts: readonly string[], request: EmbedRequest = {}): Promise<Float32Array[]> {
    const card = twoTowerCard(this.dir, this.card, 'embeddings', 'use score()');
    const values = await this.#call({ op: 'embed', texts, request: { side: request.side, inputType: request.inputType } });
    const width = card.dimension;
    return Array.from({ length: texts.length }, (_, row) => values.subarray(row * width, (row + 1) * width));
  }

  /** A cross-encoder's score per (query, doc) pair, in input order. */
  async score(pairs: ReadonlyArray<readonly [string, string]>): Promise<Float32Array> {
    if (this.card.kind !== 'cross-encoder') throw new Error(`${this.dir}: a ${this.card.kind} model has no pair score graph; embed both sides and compare the vectors`);
    return this.#call({ op: 'score', pairs });
  }

  /** Token ids fed to the model per text (ExportedModel.tokenCounts), counted on the calling thread. */
  tokenCounts(texts: readonly string[], request: EmbedRequest = {}): number[] {
    return embeddingTokenCounts(this.dir, this.card, this.tokenizer, texts, request);
  }

  /** Lets the worker finish what it was sent, releases its sessions, and ends it. */
  release(): Promise<void> {
    return (this.#released ??= (async () => {
      if (this.#gone !== undefined) return;
      const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
      this.#worker.postMessage('release');
      // The worker ends once its sessions are released and its port is closed; should something
      // native still hold its event loop open, it is ended from here.
      const stuck = setTimeout(() => void this.#worker.terminate(), 10_000);
      await exited;
      clearTimeout(stuck);
      this.#gone = new Error('the model thread has been released');
    })());
  }

  #call(call: Call): Promise<Float32Array> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...call, id } satisfies Request);
    });
  }
}
