import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../../src/metric-series';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The same observations into prom-client's metrics and into ours, each in a registry of its own. */
function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const metrics = {
    theirs: {
      histogram: new Histogram({ name: 'h_seconds', help: 'a histogram', labelNames: ['operation'], buckets: BUCKETS, registers: [theirs] }),
      counter: new Counter({ name: 'c_total', help: 'a counter "with" \\ quotes', labelNames: ['method', 'code'], registers: [theirs] }),
      bare: new Counter({ name: 'b_total', help: 'no labels', registers: [theirs] }),
    },
    ours: {
      histogram: new SeriesHistogram({ name: 'h_seconds', help: 'a histogram', labelNames: ['operation'], buckets: BUCKETS, registry: ours }),
      counter: new SeriesCounter({ name: 'c_total', help: 'a counter "with" \\ quotes', labelNames: ['method', 'code'], registry: ours }),
      bare: new SeriesCounter({ name: 'b_total', help: 'no labels', registry: ours }),
    },
  };
  const observe = (operation: string, seconds: number) => {
    metrics.theirs.histogram.observe({ operation }, seconds);
    metrics.ours.histogram.observe(seconds, operation);
  };
  const inc = (method: string, code: string) => {
    metrics.theirs.counter.inc({ method, code });
    metrics.ours.counter.inc(method, code);
  };
  const bare = () => {
    metrics.theirs.bare.inc();
    metrics.ours.bare.inc();
  };
  return { theirs, ours, observe, inc, bare };
}

/** The JSON form without prom-client's empty exemplar fields. */
async function json(registry: Registry) {
  return (await registry.getMetricsAsJSON()).map((m) => ({ ...m, values: m.values.map(({ value, labels, metricName }: { value: number; labels: object; metricName?: string }) => ({ value, labels, ...(metricName ? { metricName } : {}) })) }));
}

describe("SeriesCounter and SeriesHistogram read as prom-client's Counter and Histogram", () => {
  test.each([
    { name: 'nothing observed', run: () => {} },
    { name: 'one observation on each bound, below, between and above them', run: (p: ReturnType<typeof pair>) => [0, 0.00005, ...BUCKETS, 0.0007, 2.5000001, 10, 1e9].forEach((v) => p.observe('findUser', v)) },
    {
      name: 'many series, labels in any order of first use',
      run: (p: ReturnType<typeof pair>) => {
        for (let i = 0; i < 500; i++) {
          p.observe(['rotateRefreshToken', 'findUser', 'beginAttempt'][i % 3]!, (i % 37) / 1000);
          p.inc(['/auth.v1.AuthService/Login', '/grpc.health.v1.Health/Check'][i % 2]!, ['OK', 'UNAUTHENTICATED', 'UNAVAILABLE'][i % 3]!);
          if (i % 7 === 0) p.bare();
        }
      },
    },
    {
      name: 'label values the text form escapes',
      run: (p: ReturnType<typeof pair>) => {
        p.observe('a "quoted" \\ value\nwith a line', 0.002);
        p.inc('ü/€', 'a\\b');
      },
    },
  ])('$name: the same text and JSON', async ({ run }) => {
    const p = pair();
    run(p);
    expect(await p.ours.metrics()).toBe(await p.theirs.metrics());
    expect(await json(p.ours)).toEqual(await json(p.theirs));
    p.theirs.resetMetrics();
    p.ours.resetMetrics();
    expect(await p.ours.metrics()).toBe(await p.theirs.metrics());
    p.observe('findUser', 0.01);
    p.bare();
    expect(await p.ours.metrics()).toBe(await p.theirs.metrics());
  });

  test('the same in the OpenMetrics form and with default labels', async () => {
    const p = pair();
    for (const registry of [p.theirs, p.ours]) {
      // The registries were typed for the Prometheus form; prom-client switches them at run time.
      (registry as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      registry.setDefaultLabels({ instance: 'a' });
    }
    p.observe('findUser', 0.0003);
    p.inc('/auth.v1.AuthService/Login', 'OK');
    p.bare();
    expect(await p.ours.metrics()).toBe(await p.theirs.metrics());
    expect(await json(p.ours)).toEqual(await json(p.theirs));
  });

  test.each([
    { name: 'a value that is not a finite number', run: (h: SeriesHistogram) => h.observe(Number.NaN, 'findUser'), error: /not a finite number/ },
    { name: 'too many labels', run: (h: SeriesHistogram) => h.observe(1, 'findUser', 'extra'), error: /takes the labels operation/ },
  ])('a histogram refuses $name and counts nothing', async ({ run, error }) => {
    const registry = new Registry();
    const h = new SeriesHistogram({ name: 'h_seconds', help: 'h', labelNames: ['operation'], buckets: BUCKETS, registry });
    expect(() => run(h)).toThrow(error);
    expect((await h.get()).values).toEqual([]);
  });

  test('a counter with labels refuses an increment without them; one without refuses labels', async () => {
    const registry = new Registry();
    const labelled = new SeriesCounter({ name: 'l_total', help: 'l', labelNames: ['event'], registry });
    const bare = new SeriesCounter({ name: 'b_total', help: 'b', registry });
    expect(() => labelled.inc()).toThrow(/takes the labels event/);
    expect(() => bare.inc('x')).toThrow(/takes the labels/);
    expect((await labelled.get()).values).toEqual([]);
    expect((await bare.get()).values).toEqual([{ value: 0, labels: {} }]);
  });

  test('a name registered twice in one registry is refused, as prom-client refuses it', () => {
    const registry = new Registry();
    new SeriesCounter({ name: 'x_total', help: 'x', registry });
    expect(() => new SeriesCounter({ name: 'x_total', help: 'x', registry })).toThrow(/already been registered/);
  });
});
