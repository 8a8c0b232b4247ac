// oidc-provider (panva) as the bench runs it beside the service: the client_credentials grant and
// token introspection, its in-memory adapter (the default), one confidential client. A token for
// the resource `urn:grpc-auth:services` is an ES256 JWT (as IssueServiceToken's is); one without a
// resource is opaque, the kind introspection answers for (oidc-provider refuses to introspect JWTs).
// Started by bench/peers.js as a child process: PORT, CLIENT_SECRET; prints "listening" when up.
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };
const RESOURCE = 'urn:grpc-auth:services';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    { client_id: 'bench', client_secret: process.env.CLIENT_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'reader' },
  ],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [jwk] },
  scopes: ['reader'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return { scope: 'reader', audience: RESOURCE, accessTokenTTL: 900, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
  ttl: { ClientCredentials: 900 },
});
// oidc-provider writes no line per request; the service writes one per call (and an audit line
// per token), as it does in production: docs/performance.md says so beside the figures.
provider.listen(port, '127.0.0.1', () => console.log('listening'));
