import { spawn } from 'node:child_process';
import { join } from 'node:path';

/**
 * Debian's system Python, which `apt-get install python3-grpcio` extends: a C-core gRPC client,
 * the kind of caller grpc-js tests never are. (A `python3` earlier on PATH, pyenv's say, lacks it.)
 */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/**
 * Runs a Python script (stdin) with argv, stops it after `timeoutMs`, and returns what it printed:
 * the scripts print one JSON object per line.
 */
export function runPython(script: string, args: readonly string[], timeoutMs = 15_000): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, ['-', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), stderr: err });
      } catch (parseErr) {
        reject(new Error(`python printed something else: ${out}\n${err}`, { cause: parseErr }));
      }
    });
    child.stdin.end(script);
  });
}

/**
 * Unary calls from Python grpcio, its messages built by Python's own protobuf runtime from the
 * service's descriptor set (gen/descriptors.binpb): neither grpc-js nor protobuf-es is involved.
 * Each call is `[method path, request as proto3 JSON, bearer token or '']`; the script prints one
 * line per call: `{code, details, response}` (the response as proto3 JSON, on OK).
 */
const PYTHON_CALLS = `
import grpc, json, sys
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
addr, descriptors, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(descriptors, 'rb').read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
factory = message_factory.MessageFactory(pool)
channel = grpc.insecure_channel(addr)
for path, request, token in calls:
    service, method = path.strip('/').split('/')
    m = pool.FindServiceByName(service).FindMethodByName(method)
    req_cls, res_cls = factory.GetPrototype(m.input_type), factory.GetPrototype(m.output_type)
    call = channel.unary_unary(path, request_serializer=lambda r: r.SerializeToString(), response_deserializer=res_cls.FromString)
    metadata = [('authorization', 'Bearer ' + token)] if token else []
    try:
        res = call(json_format.ParseDict(request, req_cls()), metadata=metadata, timeout=10)
        print(json.dumps({'code': 'OK', 'response': json_format.MessageToDict(res)}))
    except grpc.RpcError as e:
        print(json.dumps({'code': e.code().name, 'details': e.details()}))
`;

export type PythonCall = readonly [path: string, request: Record<string, unknown>, token: string];

/** Runs `calls` in order from one Python grpcio channel; one result per call. */
export async function pythonCalls(address: string, calls: readonly PythonCall[]): Promise<Array<{ code: string; details?: string; response?: Record<string, unknown> }>> {
  const descriptors = join(__dirname, '..', '..', 'gen', 'descriptors.binpb');
  const run = await runPython(PYTHON_CALLS, [address, descriptors, JSON.stringify(calls)], 30_000);
  if (run.stderr !== '' || run.lines.length !== calls.length) throw new Error(`python calls failed (${run.lines.length} of ${calls.length} answered): ${run.stderr}`);
  return run.lines as Array<{ code: string; details?: string; response?: Record<string, unknown> }>;
}
