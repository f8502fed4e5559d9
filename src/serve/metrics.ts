/**
 * `kiln serve`'s metrics for GET /metrics, kept by prom-client (https://github.com/siimon/prom-client)
 * and rendered in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Every server owns a prom-client Registry of its own, never prom-client's process-wide default
 * one: two servers in one process (tests, a benchmark beside a server) would otherwise share
 * counts, and the second would fail to register the same metric names.
 *
 *   kiln_http_requests_total{route, status}             counter    HTTP requests (route: the route pattern, or "unmatched")
 *   kiln_http_request_duration_seconds{route}            histogram  request received → response sent
 *   kiln_batch_size{group}                               histogram  texts (or pairs) per model call
 *   kiln_batch_requests{group}                           histogram  requests merged into one model call
 *   kiln_model_call_duration_seconds{group}              histogram  wall time of one model call
 *   kiln_texts_total{group}                              counter    texts (or pairs) run through the model successfully
 *   kiln_model_call_errors_total{group}                  counter    model calls that failed
 *   kiln_overload_rejections_total                       counter    requests refused with 503 (--max-queue)
 *   kiln_queue_depth                                     gauge      texts (or pairs) waiting, read at each scrape
 *   kiln_model_info{model, kind, head, dimension}        gauge      the served model (always 1)
 *
 * `group` is the micro-batcher's batch group (src/serve/server.ts): `embed:query`,
 * `embed:doc:title`, `score`, `search`, `skills`… POST /embed and POST /v1/embeddings share the
 * embed groups, and so their model calls.
 *
 * @example
 * const metrics = new ServerMetrics({ model: 'twotower@3f2a9c01b2d4', kind: 'two-tower', head: 'cosine', dimension: 256 }, () => 0);
 * metrics.response('/embed', 200, 0.004);
 * await metrics.render();
 * // … # TYPE kiln_http_requests_total counter
 * //   kiln_http_requests_total{route="/embed",status="200"} 1 …
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

// Latency buckets (seconds) around the 100 ms p95 target; batch-size buckets in powers of two.
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** What kiln_model_info describes. */
export interface ServedModelInfo {
  model: string;
  kind: string;
  /** The two-tower head, or "cross-encoder". */
  head: string;
  dimension: number;
}

/** One model call, as the micro-batcher reports it (src/serve/micro-batcher.ts BatchReport, group as its key). */
export interface ModelCallReport {
  group: string;
  size: number;
  requests: number;
  durationMs: number;
  error?: Error;
}

export class ServerMetrics {
  /** This server's registry; GET /metrics renders it. */
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'status'>;
  readonly #latency: Histogram<'route'>;
  readonly #batchSizes: Histogram<'group'>;
  readonly #batchRequests: Histogram<'group'>;
  readonly #modelSeconds: Histogram<'group'>;
  readonly #texts: Counter<'group'>;
  readonly #failures: Counter<'group'>;
  readonly #rejections: Counter;

  /** `queueDepth` is read at every scrape (the batcher's queued items). */
  constructor(model: ServedModelInfo, queueDepth: () => number) {
    const registers = [this.registry];
    this.#requests = new Counter({ name: 'kiln_http_requests_total', help: 'HTTP requests by route and status code.', labelNames: ['route', 'status'], registers });
    this.#latency = new Histogram({ name: 'kiln_http_request_duration_seconds', help: 'Time from request received to response sent, by route.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.#batchSizes = new Histogram({ name: 'kiln_batch_size', help: 'Texts (or pairs) per model call, by batch group.', labelNames: ['group'], buckets: BATCH_BUCKETS, registers });
    this.#batchRequests = new Histogram({ name: 'kiln_batch_requests', help: 'Requests merged into one model call, by batch group.', labelNames: ['group'], buckets: BATCH_BUCKETS, registers });
    this.#modelSeconds = new Histogram({ name: 'kiln_model_call_duration_seconds', help: 'Wall time of one model call, by batch group.', labelNames: ['group'], buckets: LATENCY_BUCKETS, registers });
    this.#texts = new Counter({ name: 'kiln_texts_total', help: 'Texts (or pairs) run through the model successfully, by batch group.', labelNames: ['group'], registers });
    this.#failures = new Counter({ name: 'kiln_model_call_errors_total', help: 'Model calls that failed, by batch group.', labelNames: ['group'], registers });
    this.#rejections = new Counter({ name: 'kiln_overload_rejections_total', help: 'Requests refused with 503 because the queue was full (--max-queue).', registers });
    new Gauge({
      name: 'kiln_queue_depth',
      help: 'Texts (or pairs) waiting for a model call.',
      registers,
      // prom-client calls collect() on every scrape, so the value is never stale.
      collect() {
        this.set(queueDepth());
      },
    });
    const info = new Gauge({ name: 'kiln_model_info', help: 'The served model (always 1).', labelNames: ['model', 'kind', 'head', 'dimension'], registers });
    info.set({ model: model.model, kind: model.kind, head: model.head, dimension: String(model.dimension) }, 1);
  }

  /** Content-Type of render()'s text (the exposition format's version). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** One answered request; `route` is the route pattern (never the raw URL, so the label set stays bounded). */
  response(route: string, status: number, seconds: number): void {
    this.#requests.inc({ route, status: String(status) });
    this.#latency.observe({ route }, seconds);
  }

  /** One model call, successful or failed. */
  modelCall(report: ModelCallReport): void {
    const labels = { group: report.group };
    this.#batchSizes.observe(labels, report.size);
    this.#batchRequests.observe(labels, report.requests);
    this.#modelSeconds.observe(labels, report.durationMs / 1000);
    if (report.error === undefined) this.#texts.inc(labels, report.size);
    else this.#failures.inc(labels);
  }

  /** One request refused with 503 because the queue was full. */
  overloadRejected(): void {
    this.#rejections.inc();
  }

  /** The exposition text of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
