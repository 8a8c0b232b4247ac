import { connect, type OutgoingHttpHeaders } from 'node:http2';

/**
 * One gRPC call over a bare HTTP/2 client, for what grpc-js clients refuse to send (duplicate or
 * odd metadata, malformed bodies). Returns the grpc-status and grpc-message the server sent.
 */
export async function rawGrpcCall(
  address: string,
  path: string,
  headers: OutgoingHttpHeaders,
  message: Uint8Array = new Uint8Array(),
): Promise<{ status: number; message: string }> {
  const session = connect(`http://${address}`);
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let result: { status: number; message: string } | undefined;
      const take = (h: Record<string, unknown>) => {
        if (h['grpc-status'] !== undefined) {
          result = { status: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) };
        }
      };
      stream.on('response', take);
      stream.on('trailers', take);
      stream.on('data', () => {});
      stream.on('error', reject);
      stream.on('close', () => (result ? resolve(result) : reject(new Error(`no grpc-status (rst ${stream.rstCode})`))));
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.end(frame);
    });
  } finally {
    // Not close(): it waits for every stream, and a refused request can leave one pending (an
    // open handle that kept a jest worker alive). The answer is in by now, or never coming.
    session.destroy();
  }
}
