import { getOption, hasOption, type DescService } from '@bufbuild/protobuf';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { access } from '../../gen/auth/v1/options_pb.js';

/** Who may call one method. */
export interface MethodPolicy {
  readonly public: boolean;
  /** Every one of these roles is required. */
  readonly requiredRoles: readonly string[];
  /** The caller must be a user who signed in with a second factor. */
  readonly mfa: boolean;
  /** The caller must have authenticated at most this many seconds ago; 0: any time. */
  readonly maxAgeSeconds: number;
}

const AUTHENTICATED: MethodPolicy = Object.freeze({ public: false, requiredRoles: Object.freeze([]), mfa: false, maxAgeSeconds: 0 });
const PUBLIC: MethodPolicy = Object.freeze({ public: true, requiredRoles: Object.freeze([]), mfa: false, maxAgeSeconds: 0 });

/**
 * The policy of every method, keyed by its gRPC path, read from the `(auth.v1.access)` option of
 * the generated descriptors: never from hand-typed path strings. A method without the option
 * needs a valid bearer token. `publicServices` (health, reflection) are grpc-js definitions
 * whose methods are public as a whole; a path in neither list is denied.
 */
export function policiesFrom(services: readonly DescService[], publicServices: readonly ServiceDefinition[] = []): ReadonlyMap<string, MethodPolicy> {
  const policies = new Map<string, MethodPolicy>();
  for (const service of services) {
    for (const method of service.methods) {
      const path = `/${service.typeName}/${method.name}`;
      if (!hasOption(method, access)) {
        policies.set(path, AUTHENTICATED);
        continue;
      }
      const option = getOption(method, access);
      if (option.public && (option.requiredRoles.length > 0 || option.mfa || option.maxAgeSeconds > 0)) {
        throw new Error(`${path}: a public method cannot require roles, a second factor or a recent sign-in`);
      }
      policies.set(
        path,
        option.public ? PUBLIC : Object.freeze({ public: false, requiredRoles: Object.freeze([...option.requiredRoles]), mfa: option.mfa, maxAgeSeconds: option.maxAgeSeconds }),
      );
    }
  }
  for (const definition of publicServices) {
    for (const method of Object.values(definition)) policies.set(method.path, PUBLIC);
  }
  return policies;
}

/**
 * The same policies with a second factor required on every non-public method of the named
 * services (AUTH_ADMIN_REQUIRE_MFA=true names auth.v1.AdminService).
 */
export function withMfaRequired(policies: ReadonlyMap<string, MethodPolicy>, serviceNames: readonly string[]): ReadonlyMap<string, MethodPolicy> {
  if (serviceNames.length === 0) return policies;
  const out = new Map(policies);
  for (const [path, policy] of policies) {
    if (!policy.public && serviceNames.some((name) => path.startsWith(`/${name}/`))) out.set(path, Object.freeze({ ...policy, mfa: true }));
  }
  return out;
}
