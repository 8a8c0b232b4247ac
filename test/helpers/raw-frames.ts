import { connect } from 'node:net';

/**
 * A bare HTTP/2 client built from frames, for requests Node's own client refuses to send (two
 * `authorization` headers: ERR_HTTP2_HEADER_SINGLE_VALUE). Headers go out as HPACK literals
 * without indexing (RFC 7541 section 6.2.2), so no table is needed to send. The answer is read
 * at the frame level only: whether the server sent a DATA frame (a response message) before it
 * ended the stream, which tells a served call from a refused one without decoding HPACK.
 */
export interface RawOutcome {
  /** True when a DATA frame with payload came back on the stream: the call was served. */
  readonly gotMessage: boolean;
  /** True when the server ended the stream (END_STREAM or RST_STREAM) or the connection. */
  readonly ended: boolean;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 section 5.1: an integer with an N-bit prefix. */
function integer(value: number, prefixBits: number, firstByteFlags = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const bytes = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00]), integer(n.length, 7), n, integer(v.length, 7), v]);
}

/** Sends one request with exactly these headers (duplicates kept, in order) and an empty gRPC message. */
export function rawRequest(address: string, headers: ReadonlyArray<readonly [string, string]>, message: Buffer = Buffer.alloc(0)): Promise<RawOutcome> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let buffer = Buffer.alloc(0);
    let gotMessage = false;
    const done = (ended: boolean) => {
      socket.destroy();
      resolve({ gotMessage, ended });
    };
    const timer = setTimeout(() => done(false), 5000);
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ gotMessage, ended: true });
    });
    socket.on('connect', () => {
      const block = Buffer.concat(headers.map(([n, v]) => literal(n, v)));
      const body = Buffer.alloc(5 + message.length);
      body.writeUInt32BE(message.length, 1);
      message.copy(body, 5);
      socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, END_HEADERS, 1, block), frame(DATA, END_STREAM, 1, body)]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) break;
        const [type, flags, stream] = [buffer[3]!, buffer[4]!, buffer.readUInt32BE(5) & 0x7fffffff];
        buffer = buffer.subarray(9 + length);
        if (type === SETTINGS && !(flags & ACK)) socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        if (stream === 1 && type === DATA && length > 0) gotMessage = true;
        if ((stream === 1 && (type === DATA || type === HEADERS) && flags & END_STREAM) || (stream === 1 && type === RST_STREAM) || type === GOAWAY) {
          clearTimeout(timer);
          return done(true);
        }
      }
    });
  });
}
