import type { Registry } from 'prom-client';

/*
 * Counters and histograms for the metrics every call touches (calls, their latency, audit events,
 * store operations), read through prom-client's registry in prom-client's own form. prom-client's
 * Counter and Histogram hash the label object of every observation: about 1 µs a histogram
 * observation and 0.5 µs a counter increment here, five store operations and an audit event in
 * an IssueServiceToken. These find a series by its label values joined into one string. Label
 * values come from closed sets (methods, status codes, event names, store operations), so the
 * series are bounded by the code, as prom-client's are.
 */

/** A value as the registry reads it: prom-client's `MetricValue` shape. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly metricName?: string;
}

interface Exported {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: Sample[];
  readonly aggregator: 'sum';
}

/** The key of a series: its label values in order (a value with the separator cannot come from the closed sets). */
const key = (values: readonly string[]): string => values.join('\u0001');

abstract class Series<T extends { readonly labels: Readonly<Record<string, string>> }> {
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, T>();

  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The series of these label values, made at its first use. */
  protected at(one: string, two?: string): T {
    const k = two === undefined ? one : key([one, two]);
    let s = this.series.get(k);
    if (s === undefined) {
      const values = two === undefined ? [one] : [one, two];
      if (values.length !== this.labelNames.length) throw new TypeError(`${this.name} takes the labels ${this.labelNames.join(', ')}`);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] as string));
      s = this.fresh(labels);
      this.series.set(k, s);
    }
    return s;
  }

  protected abstract fresh(labels: Record<string, string>): T;

  /** Forgets every series (prom-client's `Registry.resetMetrics`). */
  reset(): void {
    this.series.clear();
  }
}

interface CounterSeries {
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}

/** A counter with one or two labels, or none (its one series exists from the start, as prom-client's does). */
export class SeriesCounter extends Series<CounterSeries> {
  readonly type = 'counter';
  private readonly unlabelled: CounterSeries | undefined;

  constructor(options: { readonly name: string; readonly help: string; readonly labelNames?: readonly string[]; readonly registry: Registry }) {
    super(options.name, options.help, options.labelNames ?? [], options.registry);
    if (this.labelNames.length === 0) {
      this.unlabelled = this.fresh({});
      this.series.set('', this.unlabelled);
    }
  }

  protected fresh(labels: Record<string, string>): CounterSeries {
    return { labels, value: 0 };
  }

  /** Adds one to the series of these label values (none for a counter without labels). */
  inc(one?: string, two?: string): void {
    if (one === undefined) {
      if (this.unlabelled === undefined) throw new TypeError(`${this.name} takes the labels ${this.labelNames.join(', ')}`);
      this.unlabelled.value++;
    } else {
      this.at(one, two).value++;
    }
  }

  override reset(): void {
    super.reset();
    if (this.unlabelled) {
      this.unlabelled.value = 0;
      this.series.set('', this.unlabelled);
    }
  }

  /** As prom-client's Counter gives them (a promise, as its `get` returns). */
  async get(): Promise<Exported> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].map((s) => ({ value: s.value, labels: s.labels })) };
  }
}

interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with one or two labels and fixed buckets (upper bounds, ascending). */
export class SeriesHistogram extends Series<HistogramSeries> {
  readonly type = 'histogram';
  private readonly buckets: readonly number[];

  constructor(options: { readonly name: string; readonly help: string; readonly labelNames: readonly string[]; readonly buckets: readonly number[]; readonly registry: Registry }) {
    super(options.name, options.help, options.labelNames, options.registry);
    this.buckets = [...options.buckets];
  }

  protected fresh(labels: Record<string, string>): HistogramSeries {
    return { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  /** Counts `value` in the series of these label values. */
  observe(value: number, one: string, two?: string): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a finite number: ${value}`);
    const s = this.at(one, two);
    const bounds = this.buckets;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (s.counts[i] as number)++;
    s.sum += value;
    s.count++;
  }

  /** As prom-client's Histogram gives them to the registry's text form: the series' labels shared by its lines. */
  async getForPromString(): Promise<Exported> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: s.labels, value: cumulative, metricName: bucket });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As prom-client's Histogram gives them to `get()`: each line's labels whole, `le` first (without its empty exemplar fields). */
  async get(): Promise<Exported> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, ...(metricName ? { metricName } : {}) })) };
  }
}
