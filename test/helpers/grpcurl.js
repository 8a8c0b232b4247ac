#!/usr/bin/env node
// A stand-in for grpcurl (a Go binary that no package registry here ships), for the test that runs
// the README's walkthrough verbatim. Like grpcurl it learns everything through server reflection:
// it knows nothing of this project's generated code. It supports what the walkthrough uses:
// -plaintext, -d JSON (or -d @: from standard input), -H "name: value", -emit-defaults, `list`, `describe SYMBOL`, and unary
// calls to pkg.Service/Method. Output follows grpcurl: JSON with lowerCamelCase names and default
// values left out; failures print "ERROR:\n  Code: <Name>\n  Message: <details>" to stderr.
'use strict';
const grpc = require('@grpc/grpc-js');
const pb = require('@bufbuild/protobuf');
const wkt = require('@bufbuild/protobuf/wkt');

const statusNames = {
  1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound', 6: 'AlreadyExists',
  7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition', 10: 'Aborted', 11: 'OutOfRange',
  12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

function parseArgs(argv) {
  const opts = { headers: [], data: undefined, emitDefaults: false, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-plaintext') continue;
    else if (a === '-emit-defaults') opts.emitDefaults = true;
    else if (a === '-d') opts.data = argv[++i];
    else if (a === '-H') opts.headers.push(argv[++i]);
    else if (a.startsWith('-')) throw new Error(`unsupported flag ${a}`);
    else opts.positional.push(a);
  }
  return opts;
}

// --- reflection client (grpc.reflection.v1), messages built from the descriptor set it returns ---
const reflectionProto = {
  name: 'reflection-client.proto',
  package: 'grpc.reflection.v1',
  syntax: 'proto3',
  messageType: [
    { name: 'Req', field: [{ name: 'file_by_filename', number: 3, type: 9, label: 1, oneofIndex: 0 }, { name: 'file_containing_symbol', number: 4, type: 9, label: 1, oneofIndex: 0 }, { name: 'list_services', number: 7, type: 9, label: 1, oneofIndex: 0 }], oneofDecl: [{ name: 'r' }] },
    { name: 'Files', field: [{ name: 'file_descriptor_proto', number: 1, type: 12, label: 3 }] },
    { name: 'Svc', field: [{ name: 'name', number: 1, type: 9, label: 1 }] },
    { name: 'Services', field: [{ name: 'service', number: 1, type: 11, label: 3, typeName: '.grpc.reflection.v1.Svc' }] },
    { name: 'Err', field: [{ name: 'error_code', number: 1, type: 5, label: 1 }, { name: 'error_message', number: 2, type: 9, label: 1 }] },
    { name: 'Res', field: [{ name: 'file_descriptor_response', number: 4, type: 11, label: 1, typeName: '.grpc.reflection.v1.Files', oneofIndex: 0 }, { name: 'list_services_response', number: 6, type: 11, label: 1, typeName: '.grpc.reflection.v1.Services', oneofIndex: 0 }, { name: 'error_response', number: 7, type: 11, label: 1, typeName: '.grpc.reflection.v1.Err', oneofIndex: 0 }], oneofDecl: [{ name: 'r' }] },
  ],
};
const clientRegistry = pb.createFileRegistry(pb.create(wkt.FileDescriptorSetSchema, { file: [pb.create(wkt.FileDescriptorProtoSchema, reflectionProto)] }));
const Req = clientRegistry.getMessage('grpc.reflection.v1.Req');
const Res = clientRegistry.getMessage('grpc.reflection.v1.Res');

function reflection(address) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
    (m) => Buffer.from(pb.toBinary(Req, m)),
    (b) => pb.fromBinary(Res, b),
  );
  const waiting = [];
  call.on('data', (r) => waiting.shift().resolve(r));
  call.on('error', (e) => waiting.splice(0).forEach((w) => w.reject(e)));
  const ask = (caseName, value) =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      call.write(pb.create(Req, { r: { case: caseName, value } }));
    });
  return { ask, close: () => { call.end(); client.close(); } };
}

async function loadRegistry(r, symbol) {
  const files = new Map();
  const take = (res) => {
    if (res.r.case !== 'fileDescriptorResponse') throw new Error(`Symbol not found: ${symbol}`);
    for (const bytes of res.r.value.fileDescriptorProto) {
      const f = pb.fromBinary(wkt.FileDescriptorProtoSchema, bytes);
      files.set(f.name, f);
    }
  };
  take(await r.ask('fileContainingSymbol', symbol));
  for (;;) {
    const missing = [...files.values()].flatMap((f) => f.dependency).find((d) => !files.has(d));
    if (!missing) break;
    take(await r.ask('fileByFilename', missing));
  }
  const ordered = [];
  const visit = (f) => {
    if (ordered.includes(f)) return;
    f.dependency.forEach((d) => visit(files.get(d)));
    ordered.push(f);
  };
  files.forEach(visit);
  return pb.createFileRegistry(pb.create(wkt.FileDescriptorSetSchema, { file: ordered }));
}

/** Leading comments of a top-level message, a service or a method, from the file's source info. */
function comments(desc) {
  const file = desc.kind === 'rpc' ? desc.parent.file : desc.file;
  let path;
  if (desc.kind === 'service') path = [6, file.services.indexOf(desc)];
  else if (desc.kind === 'rpc') path = [6, file.services.indexOf(desc.parent), 2, desc.parent.methods.indexOf(desc)];
  else if (desc.kind === 'message') path = [4, file.messages.indexOf(desc)];
  const loc = path && file.proto.sourceCodeInfo?.location.find((l) => l.path.join('.') === path.join('.'));
  return loc?.leadingComments ?? '';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [address, command, arg] = opts.positional;
  const r = reflection(address);
  try {
    if (command === 'list') {
      const res = await r.ask('listServices', '*');
      for (const s of res.r.value.service.map((x) => x.name).sort()) process.stdout.write(`${s}\n`);
      return 0;
    }
    if (command === 'describe') {
      const serviceName = arg.split('.').slice(0, -1).join('.');
      const registry = await loadRegistry(r, arg);
      const desc = registry.get(arg) ?? registry.getService(serviceName)?.methods.find((m) => m.name === arg.split('.').pop());
      if (!desc) throw new Error(`Symbol not found: ${arg}`);
      process.stdout.write(`${arg} is a ${desc.kind}:\n${comments(desc)}\n`);
      return 0;
    }
    const [serviceName, methodName] = command.split('/');
    const registry = await loadRegistry(r, serviceName);
    const method = registry.getService(serviceName)?.methods.find((m) => m.name === methodName);
    if (!method) throw new Error(`service "${serviceName}" does not include a method named "${methodName}"`);
    // -d @ reads the request from standard input, as grpcurl does.
    const data = opts.data === '@' ? require('node:fs').readFileSync(0, 'utf8') : opts.data;
    const request = pb.fromJson(method.input, JSON.parse(data ?? '{}'), { registry });
    const metadata = new grpc.Metadata();
    for (const h of opts.headers) {
      const i = h.indexOf(':');
      metadata.add(h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim());
    }
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const outcome = await new Promise((resolve) =>
      client.makeUnaryRequest(`/${serviceName}/${methodName}`, (m) => Buffer.from(pb.toBinary(method.input, m)), (b) => pb.fromBinary(method.output, b), request, metadata, (err, res) => resolve({ err, res })),
    );
    client.close();
    if (outcome.err) {
      process.stderr.write(`ERROR:\n  Code: ${statusNames[outcome.err.code]}\n  Message: ${outcome.err.details}\n`);
      return 64 + outcome.err.code;
    }
    process.stdout.write(`${JSON.stringify(pb.toJson(method.output, outcome.res, { registry, alwaysEmitImplicit: opts.emitDefaults }), null, 2)}\n`);
    return 0;
  } finally {
    r.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`Failed: ${err.message}\n`);
    process.exit(1);
  },
);
