import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { constants as h2, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

export interface ListenerLimits {
  /** Open connections one client address may hold; more are closed as they arrive. */
  readonly maxConnectionsPerAddress: number;
  /** Open connections in all. */
  readonly maxConnections: number;
}

export interface Listener {
  readonly port: number;
  /** Open connections, in all and by client address (for tests and the state budget). */
  connections(): { total: number; addresses: number };
  /** Stops accepting connections (open ones are grpc-js's to drain). */
  close(): Promise<void>;
}

/**
 * The listening socket, ours rather than grpc-js's: every TCP connection is counted by client
 * address before grpc-js sees it (grpc-js has no per-client cap), and connections past a cap are
 * closed at once. Accepted sockets are handed to grpc-js through its connection injector, which
 * does TLS and HTTP/2 as `bindAsync` would.
 */
export async function listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials, limits: ListenerLimits): Promise<Listener> {
  const known = new Set(http2ServersOf(server));
  const injector = server.createConnectionInjector(credentials);
  for (const http2 of http2ServersOf(server)) {
    if (known.has(http2)) continue;
    guardDuplicateAuthorization(http2);
    closeAnsweredStreams(http2);
  }

  const perAddress = new Map<string, number>();
  let total = 0;
  const net: NetServer = createServer((socket: Socket) => {
    const peer = socket.remoteAddress ?? 'unknown';
    const held = perAddress.get(peer) ?? 0;
    if (held >= limits.maxConnectionsPerAddress || total >= limits.maxConnections) {
      socket.destroy();
      return;
    }
    perAddress.set(peer, held + 1);
    total++;
    socket.once('close', () => {
      total--;
      const left = (perAddress.get(peer) ?? 1) - 1;
      if (left === 0) perAddress.delete(peer);
      else perAddress.set(peer, left);
    });
    injector.injectConnection(socket);
  });
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(Number(address.slice(colon + 1)), host, () => resolve());
  });
  return {
    port: (net.address() as { port: number }).port,
    connections: () => ({ total, addresses: perAddress.size }),
    close: () => new Promise((resolve) => net.close(() => resolve())),
  };
}

/** grpc-js's HTTP/2 servers (a private field: a grpc-js upgrade that moves it fails start-up, and the tests). */
function http2ServersOf(server: grpc.Server): Http2Server[] {
  const servers = (server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) throw new Error('grpc-js has no http2Servers map: the connection guard needs updating for this grpc-js version');
  return [...servers.keys()];
}

/**
 * Node's HTTP/2 keeps the first of several `authorization` headers and drops the rest, so grpc-js
 * (and the bearer interceptor) would see one value where the client sent more. The raw headers
 * still hold them all: a request with more than one gets every value back, and the interceptor
 * refuses it ("expected exactly one authorization header"). Deliberate: two credentials on one
 * call are an error, never "the first one wins".
 */
function guardDuplicateAuthorization(http2: Http2Server): void {
  http2.prependListener('stream', (_stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const values: string[] = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i] === 'authorization') values.push(rawHeaders[i + 1]!);
    if (values.length > 1) (headers as Record<string, unknown>).authorization = values;
  });
}

/**
 * A stream the server has answered while the client has not finished its side (a request that
 * never came, ended at AUTH_REQUEST_TIMEOUT; a stream the server ended first) would stay
 * half-open, holding its slot and memory until the connection dies. Once the response is
 * complete, trailers included, the stream is reset with NO_ERROR, as RFC 9113 section 8.1 allows
 * (grpc-go does the same): the client keeps the status it already has.
 */
function closeAnsweredStreams(http2: Http2Server): void {
  http2.on('stream', (stream: ServerHttp2Stream) => stream.once('finish', resetIfHalfOpen));
}

/** A stream's 'finish' listener (one function for all: no closure per call on the hot path). */
function resetIfHalfOpen(this: ServerHttp2Stream): void {
  // Node sends the RST only after what was written is flushed (close() with NO_ERROR waits).
  if (!this.readableEnded && !this.closed) this.close(h2.NGHTTP2_NO_ERROR);
}
