/**
 * A minimal Prometheus registry for `kiln serve`'s GET /metrics: counters, gauges (set, or read
 * from a callback at scrape time) and cumulative histograms, with labels, rendered in the text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 * Four metric kinds and one formatter do not justify a dependency on prom-client.
 *
 * @example
 * const registry = new MetricsRegistry();
 * const requests = registry.counter('kiln_http_requests_total', 'HTTP requests.', ['route', 'status']);
 * requests.inc({ route: '/embed', status: '200' });
 * registry.render();
 * // # HELP kiln_http_requests_total HTTP requests.
 * // # TYPE kiln_http_requests_total counter
 * // kiln_http_requests_total{route="/embed",status="200"} 1
 */

/** Content-Type of the rendered text. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = Readonly<Record<L, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Metric {
  readonly name: string;
  render(): string;
}

abstract class Labelled<L extends string> {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!NAME.test(name)) throw new Error(`metric name "${name}" must match ${NAME}`);
    for (const label of labelNames) if (!LABEL.test(label) || label === 'le') throw new Error(`${name}: label name "${label}" must match ${LABEL} and not be "le"`);
  }

  /** A stable key for one label set, and the labels in labelNames order (extra keys dropped). */
  protected normalize(labels: Labels<L>): { key: string; labels: Labels<L> } {
    const ordered = {} as Record<L, string>;
    for (const l of this.labelNames) {
      const value = labels[l];
      if (typeof value !== 'string') throw new Error(`${this.name}: missing label "${l}" (labels: ${this.labelNames.join(', ')})`);
      ordered[l] = value;
    }
    return { key: JSON.stringify(this.labelNames.map((l) => ordered[l])), labels: ordered };
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${type}\n`;
  }
}

/** A monotonically increasing count per label set. */
export class Counter<L extends string = never> extends Labelled<L> implements Metric {
  readonly #values = new Map<string, { labels: Labels<L>; value: number }>();

  inc(labels: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (inc by ${by})`);
    const { key, labels: ordered } = this.normalize(labels);
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { labels: ordered, value: by });
    else entry.value += by;
  }

  /** The current count for a label set (0 if never incremented). */
  get(labels: Labels<L>): number {
    return this.#values.get(this.normalize(labels).key)?.value ?? 0;
  }

  render(): string {
    let out = this.header('counter');
    for (const { labels, value } of this.#values.values()) out += `${this.name}${formatLabels(labels)} ${formatValue(value)}\n`;
    return out;
  }
}

/** A value that goes up and down: set explicitly, or read from `collect` at every scrape. */
export class Gauge<L extends string = never> extends Labelled<L> implements Metric {
  readonly #values = new Map<string, { labels: Labels<L>; value: number }>();

  constructor(name: string, help: string, labelNames: readonly L[], readonly collect?: () => number) {
    super(name, help, labelNames);
    if (collect !== undefined && labelNames.length > 0) throw new Error(`${name}: a collected gauge has no labels`);
  }

  set(labels: Labels<L>, value: number): void {
    const { key, labels: ordered } = this.normalize(labels);
    this.#values.set(key, { labels: ordered, value });
  }

  render(): string {
    let out = this.header('gauge');
    if (this.collect !== undefined) return `${out}${this.name} ${formatValue(this.collect())}\n`;
    for (const { labels, value } of this.#values.values()) out += `${this.name}${formatLabels(labels)} ${formatValue(value)}\n`;
    return out;
  }
}

/** Observations counted into cumulative `le` buckets, with their sum and count, per label set. */
export class Histogram<L extends string = never> extends Labelled<L> implements Metric {
  readonly buckets: readonly number[];
  readonly #values = new Map<string, { labels: Labels<L>; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new Error(`${name}: buckets must be finite and strictly increasing, got [${buckets.join(', ')}]`);
    }
    this.buckets = [...buckets];
  }

  observe(labels: Labels<L>, value: number): void {
    const { key, labels: ordered } = this.normalize(labels);
    let entry = this.#values.get(key);
    if (entry === undefined) {
      entry = { labels: ordered, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#values.set(key, entry);
    }
    // Buckets are cumulative in the output; store per-bucket counts and add up when rendering.
    const index = this.buckets.findIndex((b) => value <= b);
    if (index >= 0) entry.counts[index]! += 1;
    entry.sum += value;
    entry.count += 1;
  }

  /** Observation count and sum for a label set. */
  get(labels: Labels<L>): { count: number; sum: number } {
    const entry = this.#values.get(this.normalize(labels).key);
    return { count: entry?.count ?? 0, sum: entry?.sum ?? 0 };
  }

  render(): string {
    let out = this.header('histogram');
    for (const { labels, counts, sum, count } of this.#values.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i]!;
        out += `${this.name}_bucket${formatLabels(labels, formatValue(bound))} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${formatLabels(labels, '+Inf')} ${count}\n`;
      out += `${this.name}_sum${formatLabels(labels)} ${formatValue(sum)}\n`;
      out += `${this.name}_count${formatLabels(labels)} ${count}\n`;
    }
    return out;
  }
}

/** Holds metrics in registration order and renders them all. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#add(new Counter<L>(name, help, labelNames));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#add(new Gauge<L>(name, help, labelNames));
  }

  /** A label-less gauge whose value `collect` reads at each scrape (e.g. a queue length). */
  collectedGauge(name: string, help: string, collect: () => number): Gauge {
    return this.#add(new Gauge(name, help, [], collect));
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    return this.#add(new Histogram<L>(name, help, labelNames, buckets));
  }

  render(): string {
    return this.#metrics.map((m) => m.render()).join('');
  }

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) throw new Error(`metric "${metric.name}" is registered twice`);
    this.#metrics.push(metric);
    return metric;
  }
}

function formatLabels(labels: Readonly<Record<string, string>>, le?: string): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
