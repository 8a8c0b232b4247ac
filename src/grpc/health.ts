import { create } from '@bufbuild/protobuf';
import { status as Status, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  type HealthCheckRequest,
} from '../../gen/grpc/health/v1/health_pb.js';
import { isUnparsable, serviceDefinition } from './adapter.js';

export { ServingStatus };

/**
 * grpc.health.v1.Health (Check, Watch, List) on the generated descriptors, with a status per
 * service ("" is the whole server). Hand-written rather than the `grpc-health-check` package
 * because shutdown must be able to end open Watch streams: otherwise one load balancer watching
 * health holds every shutdown for the whole grace period.
 */
export class HealthService {
  readonly definition = serviceDefinition(Health);
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<ServerWritableStream<HealthCheckRequest, object>>>();

  constructor(services: readonly string[], initial: ServingStatus) {
    for (const name of services) this.statuses.set(name, initial);
  }

  setStatus(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const call of this.watchers.get(service) ?? []) call.write(create(HealthCheckResponseSchema, { status }));
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (after they have seen the last status): used by shutdown. */
  endWatches(): void {
    for (const calls of this.watchers.values()) for (const call of calls) call.end();
    this.watchers.clear();
  }

  readonly implementation: UntypedServiceImplementation = {
    check: (call: { request: HealthCheckRequest }, callback: (err: object | null, res?: object) => void) => {
      if (isUnparsable(call.request)) return callback({ code: Status.INVALID_ARGUMENT, details: 'request is not a valid protobuf message' });
      const status = this.statuses.get(call.request.service);
      if (status === undefined) return callback({ code: Status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      callback(null, create(HealthCheckResponseSchema, { status }));
    },
    watch: (call: ServerWritableStream<HealthCheckRequest, object>) => {
      if (isUnparsable(call.request)) return void call.emit('error', { code: Status.INVALID_ARGUMENT, details: 'request is not a valid protobuf message' });
      const service = call.request.service;
      let calls = this.watchers.get(service);
      if (!calls) this.watchers.set(service, (calls = new Set()));
      calls.add(call);
      call.on('cancelled', () => this.watchers.get(service)?.delete(call));
      call.write(create(HealthCheckResponseSchema, { status: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN }));
    },
    list: (_call: unknown, callback: (err: null, res: object) => void) => {
      callback(null, create(HealthListResponseSchema, { statuses: Object.fromEntries([...this.statuses].map(([name, status]) => [name, { status }])) }));
    },
  };
}
