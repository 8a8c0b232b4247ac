// A load generator in a process of its own (its memory is not the service's): grpc-js client,
// raw protobuf bytes, `count` calls `concurrency` at a time. Prints one JSON line with the codes.
const grpc = require('@grpc/grpc-js');

const [address, scenario, fromArg, countArg, concurrencyArg] = process.argv.slice(2);
const [from, count, concurrency] = [Number(fromArg), Number(countArg), Number(concurrencyArg)];

function field(n, text) {
  const b = Buffer.from(text);
  const len = [];
  for (let l = b.length; ; l >>= 7) {
    if (l < 128) {
      len.push(l);
      break;
    }
    len.push((l & 127) | 128);
  }
  return Buffer.concat([Buffer.from([(n << 3) | 2, ...len]), b]);
}

const raw = (b) => b;
// Watch: a new connection every 500 calls, as Node's HTTP/2 ends a session whose client resets streams
// this fast (its rapid-reset defence), which is not what the probe is about.
let client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
let onClient = 0;
function connection(callsPerConnection) {
  if (++onClient > callsPerConnection) {
    client.close();
    client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    onClient = 1;
  }
  return client;
}
const codes = {};

const scenarios = {
  // Health/Watch of a unique 16 kB name, cancelled after its first answer.
  watch: (i) =>
    new Promise((resolve) => {
      const call = connection(500).makeServerStreamRequest('/grpc.health.v1.Health/Watch', raw, raw, field(1, `probe-watch-${String(i).padStart(8, '0')}-${'x'.repeat(16_000)}`), new grpc.Metadata(), {});
      call.on('data', () => call.cancel());
      call.on('error', () => {});
      call.on('status', (s) => {
        if (s.code === 13 && process.env.PROBE_DEBUG) process.stderr.write(s.details + '\n');
        resolve(s.code);
      });
    }),
  // Login with a unique name that NFKC expands (76 × U+FDFA, 18 characters each), wrong password.
  login: (i) =>
    new Promise((resolve) => {
      const request = Buffer.concat([field(1, `${'\uFDFA'.repeat(76)}probe-lg-${i}`), field(2, 'not the password at all')]);
      connection(Infinity).makeUnaryRequest('/auth.v1.AuthService/Login', raw, raw, request, new grpc.Metadata(), {}, (err) => resolve(err ? err.code : 0));
    }),
  // RequestPasswordReset for a unique name nobody has (the answer is OK all the same), from a new
  // address every 10 calls (x-forwarded-for, the probe's proxy being trusted): per-address and
  // per-username rate counters, and the lookups behind the answer.
  reset: (i) =>
    new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set('x-forwarded-for', `10.${(i >> 20) & 255}.${(Math.floor(i / 10) >> 8) & 255}.${Math.floor(i / 10) & 255}`);
      const request = field(1, `probe-rs-${String(i).padStart(8, '0')}-${'x'.repeat(45)}`);
      connection(Infinity).makeUnaryRequest('/auth.v1.AuthService/RequestPasswordReset', raw, raw, request, metadata, {}, (err) => resolve(err ? err.code : 0));
    }),
  // Login for a unique name nobody has, wrong password, from a new address on every call
  // (x-forwarded-for, the probe's proxy being trusted): a login-attempt counter per name and per
  // address, up to the memory store's cap.
  forwarded: (i) =>
    new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set('x-forwarded-for', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      const request = Buffer.concat([field(1, `probe-fw-${String(i).padStart(8, '0')}`), field(2, 'not the password at all')]);
      connection(Infinity).makeUnaryRequest('/auth.v1.AuthService/Login', raw, raw, request, metadata, {}, (err) => resolve(err ? err.code : 0));
    }),
  // StartPasskeyLogin naming a unique user nobody has: a ceremony each (5 minutes), up to the
  // memory store's cap of 10,000.
  passkey: (i) =>
    new Promise((resolve) => {
      const request = field(1, `probe-pk-${String(i).padStart(8, '0')}-${'x'.repeat(40)}`);
      connection(Infinity).makeUnaryRequest('/auth.v1.AuthService/StartPasskeyLogin', raw, raw, request, new grpc.Metadata(), {}, (err) => resolve(err ? err.code : 0));
    }),
};

let next = from;
const end = from + count;
async function worker() {
  while (next < end) {
    const code = await scenarios[scenario](next++);
    codes[code] = (codes[code] ?? 0) + 1;
  }
}
Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
  client.close();
  process.stdout.write(`${JSON.stringify({ codes })}\n`);
});
