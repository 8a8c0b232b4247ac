import { createFileRegistry, fromBinary, toBinary, type DescFile, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { status as Status } from '@grpc/grpc-js';
import { ServerReflection as ReflectionV1 } from '../../gen/grpc/reflection/v1/reflection_pb.js';
import { ServerReflection as ReflectionV1Alpha } from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { serviceDefinition } from './bridge.js';
import { serviceHandlers } from './handlers.js';

/**
 * gRPC server reflection (v1 and v1alpha, which share one wire format) for grpcurl and friends.
 *
 * It serves the descriptor set that `npm run generate` builds with `buf build` (gen/descriptors.binpb):
 * complete files with their comments, so `grpcurl describe` shows the contract's documentation,
 * and every import included, so strict clients resolve everything. (The generated code embeds
 * descriptors without comments, and `@grpc/reflection` re-encodes files through protobufjs, which
 * drops the custom method options; hence this small implementation.)
 */
export class ReflectionIndex {
  private readonly registry: FileRegistry;
  private readonly encoded = new Map<string, Uint8Array>();

  constructor(
    descriptorSet: Uint8Array,
    private readonly services: readonly string[],
  ) {
    const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
    this.registry = createFileRegistry(set);
    for (const file of set.file) this.encoded.set(file.name, toBinary(FileDescriptorProtoSchema, file));
    for (const name of services) {
      if (!this.registry.getService(name)) throw new Error(`reflection: no descriptor for served service ${name}`);
    }
  }

  listServices(): readonly string[] {
    return this.services;
  }

  /** The named file and, after it, every file it imports, transitively. */
  fileByName(name: string): Uint8Array[] | undefined {
    const file = this.registry.getFile(name);
    return file && this.withDependencies(file);
  }

  /** The file declaring a fully-qualified symbol: service, method, message, field, enum, value or extension. */
  fileContainingSymbol(symbol: string): Uint8Array[] | undefined {
    const name = symbol.replace(/^\./, '');
    const direct = this.registry.get(name);
    if (direct) return this.withDependencies(direct.file);
    // Methods, fields and enum values are members of a type one level up.
    const parent = this.registry.get(name.slice(0, Math.max(0, name.lastIndexOf('.'))));
    return parent && this.withDependencies(parent.file);
  }

  fileContainingExtension(extendee: string, number: number): Uint8Array[] | undefined {
    const message = this.registry.getMessage(extendee);
    const extension = message && this.registry.getExtensionFor(message, number);
    return extension && this.withDependencies(extension.file);
  }

  extensionNumbers(extendee: string): number[] | undefined {
    const message: DescMessage | undefined = this.registry.getMessage(extendee);
    if (!message) return undefined;
    const numbers: number[] = [];
    for (const type of this.registry) {
      if (type.kind === 'extension' && type.extendee.typeName === message.typeName) numbers.push(type.number);
    }
    return numbers.sort((a, b) => a - b);
  }

  private withDependencies(root: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (file: DescFile) => {
      const name = file.proto.name;
      if (seen.has(name)) return;
      seen.add(name);
      out.push(this.encoded.get(name)!);
      file.dependencies.forEach(visit);
    };
    visit(root);
    return out;
  }
}

/** Request fields both reflection versions share. */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: 'fileByFilename'; value: string }
    | { case: 'fileContainingSymbol'; value: string }
    | { case: 'fileContainingExtension'; value: { containingType: string; extensionNumber: number } }
    | { case: 'allExtensionNumbersOfType'; value: string }
    | { case: 'listServices'; value: string }
    | { case: undefined; value?: undefined };
}

function answer(index: ReflectionIndex, req: ReflectionRequest) {
  const notFound = (what: string) => ({
    case: 'errorResponse' as const,
    value: { errorCode: Status.NOT_FOUND, errorMessage: `${what} not found` },
  });
  const files = (found: Uint8Array[] | undefined, what: string) =>
    found ? { case: 'fileDescriptorResponse' as const, value: { fileDescriptorProto: found } } : notFound(what);
  const r = req.messageRequest;
  switch (r.case) {
    case 'listServices':
      return { case: 'listServicesResponse' as const, value: { service: index.listServices().map((name) => ({ name })) } };
    case 'fileByFilename':
      return files(index.fileByName(r.value), `file ${r.value}`);
    case 'fileContainingSymbol':
      return files(index.fileContainingSymbol(r.value), `symbol ${r.value}`);
    case 'fileContainingExtension':
      return files(index.fileContainingExtension(r.value.containingType, r.value.extensionNumber), `extension ${r.value.extensionNumber} of ${r.value.containingType}`);
    case 'allExtensionNumbersOfType': {
      const numbers = index.extensionNumbers(r.value);
      return numbers ? { case: 'allExtensionNumbersResponse' as const, value: { baseTypeName: r.value, extensionNumber: numbers } } : notFound(`type ${r.value}`);
    }
    default:
      return { case: 'errorResponse' as const, value: { errorCode: Status.INVALID_ARGUMENT, errorMessage: 'empty or unknown reflection request' } };
  }
}

/** One reflection answer per request, in order, until the client half-closes. */
function impl(index: ReflectionIndex) {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<ReflectionRequest>) {
      for await (const req of requests) {
        let messageResponse;
        try {
          messageResponse = answer(index, req);
        } catch {
          messageResponse = { case: 'errorResponse' as const, value: { errorCode: Status.INTERNAL, errorMessage: 'internal error' } };
        }
        yield { validHost: req.host, originalRequest: req as never, messageResponse };
      }
    },
  };
}

/** The reflection services to add to a server, v1 and v1alpha (one wire format, two names). */
export function reflectionServices(index: ReflectionIndex) {
  return [ReflectionV1, ReflectionV1Alpha].map((service) => ({
    service,
    definition: serviceDefinition(service),
    implementation: serviceHandlers(service, impl(index) as never),
  }));
}
