/**
 * The search service's lexical ranker in worker threads.
 *
 * Why: a character TF-IDF query against ESCO's 14k skills walks the postings of ~100k labels,
 * milliseconds of pure JavaScript per request. On the HTTP thread that work would sit between
 * every request and its response, and in front of the query embedding's onnxruntime call; in a
 * worker it runs beside both, on another core.
 *
 * Each worker builds the same `LexicalRanker` (src/eval/lexical.ts) from the index's documents
 * and answers `{id, query, window}` with the candidates, their typed arrays transferred, not
 * copied. A pool hands each query to the worker with the fewest queries outstanding. When the
 * module runs as the worker (it is its own entry point), it serves; imported, it exports the pool.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { LexicalRanker, type Candidates, type LexicalName, type LexicalSettings } from '../eval/lexical.js';
import type { CorpusDocument } from '../data/types.js';
import { workerEntry } from './worker-entry.js';

interface WorkerInput {
  name: LexicalName;
  documents: CorpusDocument[];
  settings: LexicalSettings;
}
interface Request {
  id: number;
  query: string;
  window: number;
}
type Reply = { id: number; docs: Int32Array; scores: Float32Array } | { id: number; error: string } | { ready: true };

if (!isMainThread && parentPort !== null && (workerData as { kilnLexicalWorker?: boolean } | null)?.kilnLexicalWorker === true) {
  const port = parentPort;
  const input = workerData as WorkerInput;
  const ranker = new LexicalRanker(input.name, input.documents, input.settings);
  port.on('message', (request: Request) => {
    try {
      const { docs, scores } = ranker.candidates(request.query, request.window);
      port.postMessage({ id: request.id, docs, scores } satisfies Reply, [docs.buffer as ArrayBuffer, scores.buffer as ArrayBuffer]);
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message } satisfies Reply);
    }
  });
  port.postMessage({ ready: true } satisfies Reply);
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (c: Candidates) => void; reject: (e: Error) => void }>;
}

/** `threads` workers, each with its own copy of the ranker. */
export class LexicalWorkerPool {
  readonly #slots: Slot[];
  #nextId = 0;
  #closed = false;

  private constructor(slots: Slot[]) {
    this.#slots = slots;
  }

  static async start(name: LexicalName, documents: readonly CorpusDocument[], settings: LexicalSettings, threads: number): Promise<LexicalWorkerPool> {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`lexical threads must be an integer ≥ 1, got ${threads}`);
    const { entry, eval: evaluate } = workerEntry(import.meta.url);
    const data = { kilnLexicalWorker: true, name, documents: documents.map((d) => ({ id: d.id, text: d.text, labels: [...(d.labels ?? [])] })), settings: { fields: [...settings.fields], match: settings.match } };
    const slots = await Promise.all(
      Array.from({ length: threads }, () => {
        const worker = new Worker(entry, { workerData: data, eval: evaluate });
        const slot: Slot = { worker, pending: new Map() };
        return new Promise<Slot>((resolve, reject) => {
          const onError = (error: Error): void => reject(new Error(`lexical worker failed to start: ${error.message}`));
          worker.once('error', onError);
          worker.on('message', (reply: Reply) => {
            if ('ready' in reply) {
              worker.off('error', onError);
              worker.on('error', (error) => {
                for (const p of slot.pending.values()) p.reject(new Error(`lexical worker failed: ${error.message}`));
                slot.pending.clear();
              });
              resolve(slot);
              return;
            }
            const waiting = slot.pending.get(reply.id);
            if (waiting === undefined) return;
            slot.pending.delete(reply.id);
            if ('error' in reply) waiting.reject(new Error(reply.error));
            else waiting.resolve({ docs: reply.docs, scores: reply.scores });
          });
        });
      }),
    );
    return new LexicalWorkerPool(slots);
  }

  /** Queries sent to the workers and not yet answered. */
  get pending(): number {
    return this.#slots.reduce((n, s) => n + s.pending.size, 0);
  }

  /** The lexical ranker's `window` best documents for `query` (src/eval/lexical.ts `candidates`). */
  candidates(query: string, window: number): Promise<Candidates> {
    if (this.#closed) return Promise.reject(new Error('the lexical worker pool is closed'));
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, query, window } satisfies Request);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
