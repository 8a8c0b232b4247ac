import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponseSchema,
} from '../../gen/grpc/health/v1/health_pb.js';
import { AuthError } from '../errors.js';
import { serviceDefinition } from './bridge.js';
import type { CallContext } from './call-context.js';
import type { ServiceImpl } from './handlers.js';

export { ServingStatus };

type Update = MessageInitShape<typeof HealthCheckResponseSchema>;

/** One open Watch: statuses waiting to be sent, and a wake-up for the stream's loop. */
interface Watcher {
  readonly pending: ServingStatus[];
  wake: (() => void) | undefined;
  ended: boolean;
}

/**
 * grpc.health.v1.Health (Check, Watch, List) on the generated descriptors, with a status per
 * service ("" is the whole server). The set of services is fixed when the server is built, so
 * a Watch of any other name holds no state here beyond its stream: it is told SERVICE_UNKNOWN
 * (as the protocol asks) and left open until the client goes. Shutdown ends every Watch after
 * its last status: otherwise one load balancer watching would hold shutdown for the whole grace.
 */
export class HealthService {
  readonly service = Health;
  readonly definition = serviceDefinition(Health);
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  /** Open Watch streams, of known names and others alike. */
  private open = 0;

  constructor(
    services: readonly string[],
    initial: ServingStatus,
    /** Watch streams open at once at most; more are refused (RESOURCE_EXHAUSTED). */
    private readonly maxWatchers = 1000,
  ) {
    for (const name of services) {
      this.statuses.set(name, initial);
      this.watchers.set(name, new Set());
    }
  }

  /** Sets a known service's status and tells its watchers. */
  setStatus(service: string, status: ServingStatus): void {
    const watchers = this.watchers.get(service);
    if (!watchers) throw new Error(`health: unknown service ${service}`);
    this.statuses.set(service, status);
    for (const w of watchers) {
      w.pending.push(status);
      w.wake?.();
    }
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Open Watch streams, for tests and the state budget. */
  get watching(): number {
    return this.open;
  }

  private stopping = false;
  private readonly onStop = new Set<() => void>();

  /** Ends every Watch stream (after they have sent the last status): used by shutdown. */
  endWatches(): void {
    this.stopping = true;
    for (const stop of this.onStop) stop();
    this.onStop.clear();
    for (const set of this.watchers.values()) {
      for (const w of set) {
        w.ended = true;
        w.wake?.();
      }
    }
  }

  readonly implementation: ServiceImpl<typeof Health> = {
    check: async (req) => {
      const status = this.statuses.get(req.service);
      // The name is echoed only when it is short and plain: an error must not carry a caller's 60 KiB back.
      if (status === undefined) throw new AuthError('not_found', /^[\x21-\x7e]{1,100}$/.test(req.service) ? `unknown service ${req.service}` : 'unknown service');
      return { status };
    },
    watch: (req, ctx) => {
      if (this.open >= this.maxWatchers) throw new AuthError('overloaded', 'too many health watchers; retry shortly');
      return this.watch(req.service, ctx);
    },
    list: async () => ({ statuses: Object.fromEntries([...this.statuses].map(([name, status]) => [name, { status }])) }),
  };

  private async *watch(service: string, ctx: CallContext): AsyncGenerator<Update> {
    this.open++;
    try {
      yield* this.follow(service, ctx);
    } finally {
      this.open--;
    }
  }

  private async *follow(service: string, ctx: CallContext): AsyncGenerator<Update> {
    const watchers = this.watchers.get(service);
    if (!watchers) {
      yield { status: ServingStatus.SERVICE_UNKNOWN };
      // Held by nothing but its stream: it ends when the client goes or the server shuts down.
      let stop: () => void = () => {};
      try {
        await new Promise<void>((resolve) => {
          stop = resolve;
          if (ctx.signal.aborted || this.stopping) return resolve();
          ctx.signal.addEventListener('abort', stop, { once: true });
          this.onStop.add(stop);
        });
      } finally {
        this.onStop.delete(stop);
        ctx.signal.removeEventListener('abort', stop);
      }
      return;
    }
    const watcher: Watcher = { pending: [this.statuses.get(service)!], wake: undefined, ended: ctx.signal.aborted };
    watchers.add(watcher);
    const onAbort = () => {
      watcher.ended = true;
      watcher.wake?.();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (watcher.pending.length > 0) yield { status: watcher.pending.shift()! };
        if (watcher.ended) return;
        await new Promise<void>((resolve) => (watcher.wake = resolve));
        watcher.wake = undefined;
      }
    } finally {
      watchers.delete(watcher);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }
}
