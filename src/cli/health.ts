import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Env } from '../config.js';
import { createClient } from '../grpc/client.js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { CliError, type Io } from './commands.js';

export const HEALTH_USAGE = `usage: grpc-auth health [--address host:port] [--service name] [--timeout ms]
                       [--tls] [--ca file] [--cert file --key file] [--server-name name]

Asks a running service's grpc.health.v1.Health/Check and exits 0 when it answers SERVING, 1 when
it answers anything else or cannot be reached (for container HEALTHCHECKs and exec probes).

  --address      where the service listens (default: AUTH_ADDRESS, with 0.0.0.0 or [::] read as loopback)
  --service      the health name to ask about ("" the whole server, the default; "liveness"; a service)
  --timeout      how long to wait, in milliseconds (default 2000)
  --tls          speak TLS; on by itself when AUTH_TLS_CERT is set
  --ca           PEM CA bundle to verify the server with (default: AUTH_TLS_CERT's chain, for a self-check)
  --cert --key   a client certificate for mTLS (default: none; a service with AUTH_TLS_CLIENT_CA needs one)
  --server-name  the name to check the server's certificate against (default: localhost)`;

interface HealthArgs {
  address: string;
  service: string;
  timeoutMs: number;
  tls: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  serverName: string;
}

function parse(args: readonly string[], env: Env): HealthArgs {
  const out: HealthArgs = { address: localAddress(env.AUTH_ADDRESS ?? '127.0.0.1:50051'), service: '', timeoutMs: 2000, tls: (env.AUTH_TLS_CERT ?? '') !== '', serverName: 'localhost' };
  if ((env.AUTH_TLS_CERT ?? '') !== '') out.ca = env.AUTH_TLS_CERT;
  const value = (i: number, flag: string): string => {
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new CliError(`${flag} needs a value\n\n${HEALTH_USAGE}`, 2);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    switch (flag) {
      case '--address':
        out.address = localAddress(value(i++, flag));
        break;
      case '--service':
        out.service = args[++i] ?? '';
        break;
      case '--timeout': {
        const ms = Number(value(i++, flag));
        if (!Number.isInteger(ms) || ms < 1 || ms > 60_000) throw new CliError('--timeout must be a whole number of milliseconds from 1 to 60000', 2);
        out.timeoutMs = ms;
        break;
      }
      case '--tls':
        out.tls = true;
        break;
      case '--ca':
        out.ca = value(i++, flag);
        out.tls = true;
        break;
      case '--cert':
        out.cert = value(i++, flag);
        out.tls = true;
        break;
      case '--key':
        out.key = value(i++, flag);
        out.tls = true;
        break;
      case '--server-name':
        out.serverName = value(i++, flag);
        break;
      default:
        throw new CliError(`unknown argument "${flag}"\n\n${HEALTH_USAGE}`, 2);
    }
  }
  if ((out.cert === undefined) !== (out.key === undefined)) throw new CliError('--cert and --key go together', 2);
  return out;
}

/** A listening address as a local client dials it: a wildcard host means this machine. */
function localAddress(address: string): string {
  return address.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 2);
  }
}

/** health: exit 0 when the service answers SERVING; prints the status it answered (or why none came). */
export async function healthCommand(args: readonly string[], io: Io): Promise<number> {
  const a = parse(args, io.env);
  const credentials = a.tls
    ? grpc.credentials.createSsl(a.ca ? read(a.ca, 'CA file') : null, a.key ? read(a.key, 'key file') : null, a.cert ? read(a.cert, 'certificate file') : null)
    : grpc.credentials.createInsecure();
  const client = createClient(Health, a.address, credentials, { 'grpc.ssl_target_name_override': a.serverName, 'grpc.default_authority': a.serverName });
  try {
    const answer = await client.check({ service: a.service }, { deadline: a.timeoutMs });
    const name = ServingStatus[answer.status] ?? String(answer.status);
    io.out(`${name}\n`);
    return answer.status === ServingStatus.SERVING ? 0 : 1;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    io.err(`${a.address}${a.service ? ` (${a.service})` : ''}: ${e.code !== undefined ? `${grpc.status[e.code]}: ${e.details}` : String(err)}`);
    return 1;
  } finally {
    client.close();
  }
}
