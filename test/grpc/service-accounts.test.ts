import { credentials, Metadata, status } from '@grpc/grpc-js';
import { createHash, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { AdminService } from '../../gen/auth/v1/admin_pb';
import { AuthService, InactiveReason, SubjectType } from '../../gen/auth/v1/auth_pb';
import { CredentialType } from '../../gen/auth/v1/resources_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { silentLog } from '../../src/core/events';
import { ServiceAccountAdmin } from '../../src/core/service-accounts';
import { createClient } from '../../src/grpc/client';
import { systemRandom } from '../../src/random';
import { jwkThumbprint } from '../../src/core/keys';
import { runPython } from '../helpers/python-grpc';
import { describeNeeding } from '../helpers/requires';
import { bearer, PASSWORD, startTestServer, statusOf } from '../helpers/server';
import { createTestCa, describeWithOpenssl, pem } from '../helpers/tls';

const INVALID_CLIENT = { code: status.UNAUTHENTICATED, details: 'client authentication failed' };

/** A server with an admin, and a helper for the admin's calls. */
async function setup(env: Record<string, string> = {}) {
  const server = await startTestServer({ env });
  const root = await server.auth.register({ username: 'root', password: PASSWORD });
  await server.app.store.updateUser(root.userId, { roles: ['admin'] });
  const admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
  const create = async (name: string, roles: string[] = []) => server.admin.createServiceAccount({ name, roles }, admin);
  return { server, admin, create };
}

function keyPair(kid?: unknown): { privateKey: KeyObject; jwk: string; thumbprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: JSON.stringify(kid === undefined ? jwk : { ...jwk, kid }), thumbprint: jwkThumbprint(jwk as Record<string, string>) };
}

/** The server's time in seconds (its manual clock): assertions are made for it. */
let nowS = () => Math.floor(Date.now() / 1000);

/** An RFC 7523 assertion; each claim may be overridden (undefined removes it). */
function assertion(key: KeyObject, clientId: string, issuer: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const now = nowS();
  const payload = Object.fromEntries(Object.entries({ iss: clientId, sub: clientId, aud: issuer, iat: now, exp: now + 60, jti: randomBytes(12).toString('hex'), ...claims }).filter(([, v]) => v !== undefined));
  // (jsonwebtoken keeps a payload's own iat; its noTimestamp would delete it.)
  return jwt.sign(payload, key, { algorithm: 'ES256', header: { alg: 'ES256', ...header } as jwt.JwtHeader });
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('service accounts: administration', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    s = await setup();
  });
  afterEach(() => s.server.close());

  test('CreateServiceAccount shows the secret once; Get and List never show it, nor its hash', async () => {
    const created = await s.create('reports', ['reader']);
    expect(created.clientSecret).toMatch(/^svs_[A-Za-z0-9_-]{43}$/);
    expect(created.clientId).toMatch(/^sva_/);
    expect(created.serviceAccount).toMatchObject({ serviceAccountId: created.clientId, clientId: created.clientId, name: 'reports', roles: ['reader'], disabled: false });
    expect(created.serviceAccount!.credentials).toEqual([expect.objectContaining({ credentialId: created.secretId, type: CredentialType.SECRET })]);
    const fetched = await s.server.admin.getServiceAccount({ serviceAccountId: created.clientId }, s.admin);
    const listed = await s.server.admin.listServiceAccounts({}, s.admin);
    const hash = createHash('sha256').update(created.clientSecret).digest('base64url');
    for (const text of [JSON.stringify(fetched, bigints), JSON.stringify(listed, bigints)]) {
      expect(text).not.toContain(created.clientSecret);
      expect(text).not.toContain(hash);
    }
    expect(listed.serviceAccounts.map((a) => a.name)).toEqual(['reports']);
    expect(await statusOf(s.create('reports'))).toEqual({ code: status.ALREADY_EXISTS, details: 'a service account of that name exists' });
    expect((await statusOf(s.create('Bad Name'))).code).toBe(status.INVALID_ARGUMENT);
  });

  test('keys and certificates: a public P-256 JWK only; a 43-character thumbprint; at most 10 credentials', async () => {
    const { clientId } = await s.create('billing');
    const { jwk } = keyPair();
    const added = await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
    expect(added.keyId).toMatch(/^key_/);
    expect(await statusOf(s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin))).toMatchObject({ code: status.ALREADY_EXISTS });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(await statusOf(s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: JSON.stringify(privateKey.export({ format: 'jwk' })) }, s.admin))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'public_key_jwk holds a private key ("d"); send the public key only',
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    expect((await statusOf(s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: JSON.stringify(rsa) }, s.admin))).code).toBe(status.INVALID_ARGUMENT);
    expect((await statusOf(s.server.admin.bindServiceAccountCertificate({ serviceAccountId: clientId, thumbprint: 'short' }, s.admin))).code).toBe(status.INVALID_ARGUMENT);
    const bound = await s.server.admin.bindServiceAccountCertificate({ serviceAccountId: clientId, thumbprint: 'A'.repeat(43) }, s.admin);
    expect(bound.bindingId).toMatch(/^crt_/);
    for (let i = 0; i < 7; i++) await s.server.admin.addServiceAccountSecret({ serviceAccountId: clientId }, s.admin);
    expect(await statusOf(s.server.admin.addServiceAccountSecret({ serviceAccountId: clientId }, s.admin))).toMatchObject({ code: status.FAILED_PRECONDITION });
    await s.server.admin.removeServiceAccountKey({ serviceAccountId: clientId, keyId: added.keyId }, s.admin);
    await s.server.admin.unbindServiceAccountCertificate({ serviceAccountId: clientId, bindingId: bound.bindingId }, s.admin);
    expect(await statusOf(s.server.admin.removeServiceAccountKey({ serviceAccountId: clientId, keyId: added.keyId }, s.admin))).toEqual({ code: status.NOT_FOUND, details: 'key not found' });
    const types = (await s.server.admin.getServiceAccount({ serviceAccountId: clientId }, s.admin)).serviceAccount!.credentials.map((c) => c.type);
    expect(types).toEqual(Array(8).fill(CredentialType.SECRET));
  });

  test('every service-account RPC needs the admin role', async () => {
    const plain = await s.server.auth.register({ username: 'alice', password: PASSWORD }).then(() => s.server.auth.login({ username: 'alice', password: PASSWORD }));
    const names = AdminService.methods.filter((m) => m.name.includes('ServiceAccount'));
    expect(names.length).toBe(14);
    for (const method of names) {
      const call = (s.server.admin as unknown as Record<string, (r: object, o: object) => Promise<unknown>>)[method.localName]!;
      expect(await statusOf(call({}, bearer(plain.accessToken)))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    }
  });
});

describe('IssueServiceToken', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let issuer: string;
  beforeEach(async () => {
    s = await setup();
    issuer = s.server.app.config.issuer;
    nowS = () => Math.floor(s.server.clock.now() / 1000);
  });
  afterEach(() => s.server.close());

  test('with a secret: a token for the account (sub, client_id, roles, typ at+jwt), told apart from users', async () => {
    const { clientId, clientSecret, secretId } = await s.create('reports', ['admin', 'reader']);
    const issued = await s.server.auth.issueServiceToken({ clientId, clientSecret });
    expect(issued).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(claimsOf(issued.accessToken)).toMatchObject({ sub: clientId, client_id: clientId, roles: ['admin', 'reader'], sid: secretId, username: 'reports' });
    expect(JSON.parse(Buffer.from(issued.accessToken.split('.')[0]!, 'base64url').toString())).toMatchObject({ typ: 'at+jwt' });
    expect(await s.server.auth.validate({ accessToken: issued.accessToken })).toMatchObject({ active: true, subjectType: SubjectType.SERVICE_ACCOUNT, clientId, userId: clientId });
    expect(await s.server.secure.whoAmI({}, bearer(issued.accessToken))).toMatchObject({ subjectType: SubjectType.SERVICE_ACCOUNT, clientId, username: 'reports' });
    await expect(s.server.secure.adminPing({}, bearer(issued.accessToken))).resolves.toMatchObject({ message: 'pong' });
    const user = await s.server.auth.login({ username: 'root', password: PASSWORD });
    expect(await s.server.auth.validate({ accessToken: user.accessToken })).toMatchObject({ subjectType: SubjectType.USER, clientId: '' });
    // A service account is no user: the self-service of users is not for it.
    expect(await statusOf(s.server.account.getAccount({}, bearer(issued.accessToken)))).toEqual({ code: status.FAILED_PRECONDITION, details: 'AccountService is for users; an admin manages service accounts' });
  });

  test.each([
    { name: 'a wrong secret', req: (id: string) => ({ clientId: id, clientSecret: `svs_${'x'.repeat(43)}` }) },
    { name: 'a malformed secret', req: (id: string) => ({ clientId: id, clientSecret: 'hunter2' }) },
    { name: 'an unknown client id', req: () => ({ clientId: 'sva_AAAAAAAAAAAAAAAAAAAAAA', clientSecret: `svs_${'x'.repeat(43)}` }) },
    { name: 'a user id', req: () => ({ clientId: 'usr_AAAAAAAAAAAAAAAAAAAAAA', clientSecret: `svs_${'x'.repeat(43)}` }) },
    { name: 'no credential over plaintext', req: (id: string) => ({ clientId: id }) },
  ])('$name: one answer for every failure', async ({ req }) => {
    const { clientId } = await s.create('reports');
    expect(await statusOf(s.server.auth.issueServiceToken(req(clientId)))).toEqual(INVALID_CLIENT);
    expect(s.server.logs.entries).toContainEqual(expect.objectContaining({ event: 'client_auth_failed' }));
  });

  test('failures are throttled per client id and address', async () => {
    const { clientId, clientSecret } = await s.create('reports');
    for (let i = 0; i < 5; i++) expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret: `svs_${String(i).repeat(43)}` }))).toEqual(INVALID_CLIENT);
    expect((await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret }))).code).toBe(status.RESOURCE_EXHAUSTED);
  });
  test('two secrets work side by side for rotation; a revoked one stops, and its tokens turn inactive at once', async () => {
    const { clientId, clientSecret: first, secretId } = await s.create('reports');
    const second = await s.server.admin.addServiceAccountSecret({ serviceAccountId: clientId }, s.admin);
    const byFirst = await s.server.auth.issueServiceToken({ clientId, clientSecret: first });
    const bySecond = await s.server.auth.issueServiceToken({ clientId, clientSecret: second.clientSecret });
    await s.server.admin.revokeServiceAccountSecret({ serviceAccountId: clientId, secretId }, s.admin);
    expect(await s.server.auth.validate({ accessToken: byFirst.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
    expect(await statusOf(s.server.secure.whoAmI({}, bearer(byFirst.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: revoked' });
    expect((await s.server.auth.validate({ accessToken: bySecond.accessToken })).active).toBe(true);
    expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret: first }))).toEqual(INVALID_CLIENT);
    await expect(s.server.auth.issueServiceToken({ clientId, clientSecret: second.clientSecret })).resolves.toBeDefined();
  });

  test('disable, enable, delete, and roles: at once for live tokens', async () => {
    const { clientId, clientSecret } = await s.create('reports', ['admin']);
    const token = (await s.server.auth.issueServiceToken({ clientId, clientSecret })).accessToken;
    await s.server.admin.setServiceAccountRoles({ serviceAccountId: clientId, roles: [] }, s.admin);
    expect(await statusOf(s.server.secure.adminPing({}, bearer(token)))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    await s.server.admin.disableServiceAccount({ serviceAccountId: clientId }, s.admin);
    expect((await s.server.auth.validate({ accessToken: token })).active).toBe(false);
    expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret }))).toEqual({ code: status.FAILED_PRECONDITION, details: 'service account disabled' });
    await s.server.admin.enableServiceAccount({ serviceAccountId: clientId }, s.admin);
    const again = (await s.server.auth.issueServiceToken({ clientId, clientSecret })).accessToken;
    await s.server.admin.deleteServiceAccount({ serviceAccountId: clientId }, s.admin);
    expect((await s.server.auth.validate({ accessToken: again })).active).toBe(false);
    expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret }))).toEqual(INVALID_CLIENT);
  });

  describe('with a client assertion (RFC 7523)', () => {
    test('a fresh assertion gets a token; the key’s removal makes its tokens inactive', async () => {
      const { clientId } = await s.create('billing');
      const { privateKey, jwk } = keyPair();
      const { keyId, kid } = await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
      const issued = await s.server.auth.issueServiceToken({ clientAssertion: assertion(privateKey, clientId, issuer, {}, { kid }) });
      expect(claimsOf(issued.accessToken)).toMatchObject({ sub: clientId, sid: keyId });
      await expect(s.server.auth.issueServiceToken({ clientId, clientAssertion: assertion(privateKey, clientId, issuer) })).resolves.toBeDefined();
      await s.server.admin.removeServiceAccountKey({ serviceAccountId: clientId, keyId }, s.admin);
      expect((await s.server.auth.validate({ accessToken: issued.accessToken })).active).toBe(false);
    });

    test('a JWK’s own kid is kept: assertions may name it or the thumbprint; another kid is refused', async () => {
      const { clientId } = await s.create('billing');
      const { privateKey, jwk, thumbprint } = keyPair('k1');
      const added = await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
      expect(added).toMatchObject({ kid: 'k1', thumbprint });
      const listed = await s.server.admin.getServiceAccount({ serviceAccountId: clientId }, s.admin);
      expect(listed.serviceAccount?.credentials.find((c) => c.credentialId === added.keyId)).toMatchObject({ type: CredentialType.KEY, kid: 'k1', thumbprint });
      for (const kid of ['k1', thumbprint, undefined]) {
        const token = await s.server.auth.issueServiceToken({ clientAssertion: assertion(privateKey, clientId, issuer, {}, kid === undefined ? {} : { kid }) });
        expect(claimsOf(token.accessToken)).toMatchObject({ sub: clientId, sid: added.keyId });
      }
      expect(await statusOf(s.server.auth.issueServiceToken({ clientAssertion: assertion(privateKey, clientId, issuer, {}, { kid: 'k2' }) }))).toEqual(INVALID_CLIENT);
    });

    test.each([
      { name: 'another key with a kid already used', jwk: () => keyPair('k1').jwk, want: { code: status.INVALID_ARGUMENT, details: 'another key of this service account has that kid; give the JWK a kid of its own' } },
      { name: 'a kid of 129 characters', jwk: () => keyPair('k'.repeat(129)).jwk, want: { code: status.INVALID_ARGUMENT, details: "public_key_jwk's kid must be 1 to 128 printable ASCII characters" } },
      { name: 'an empty kid', jwk: () => keyPair('').jwk, want: { code: status.INVALID_ARGUMENT, details: "public_key_jwk's kid must be 1 to 128 printable ASCII characters" } },
      { name: 'a kid that is not a string', jwk: () => keyPair(7).jwk, want: { code: status.INVALID_ARGUMENT, details: "public_key_jwk's kid must be 1 to 128 printable ASCII characters" } },
      { name: 'a kid with a control character', jwk: () => keyPair('k\n1').jwk, want: { code: status.INVALID_ARGUMENT, details: "public_key_jwk's kid must be 1 to 128 printable ASCII characters" } },
    ])('refused: $name', async ({ jwk, want }) => {
      const { clientId } = await s.create('billing');
      await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: keyPair('k1').jwk }, s.admin);
      expect(await statusOf(s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk() }, s.admin))).toEqual(want);
    });

    test('the same key twice is ALREADY_EXISTS, whatever kid it declares; one kid may serve two accounts', async () => {
      const a = await s.create('billing');
      const b = await s.create('backup');
      const { privateKey, jwk } = keyPair('k1');
      await s.server.admin.addServiceAccountKey({ serviceAccountId: a.clientId, publicKeyJwk: jwk }, s.admin);
      const renamed = JSON.stringify({ ...JSON.parse(jwk), kid: 'k9' });
      expect(await statusOf(s.server.admin.addServiceAccountKey({ serviceAccountId: a.clientId, publicKeyJwk: renamed }, s.admin))).toEqual({ code: status.ALREADY_EXISTS, details: 'that credential is already registered' });
      await s.server.admin.addServiceAccountKey({ serviceAccountId: b.clientId, publicKeyJwk: keyPair('k1').jwk }, s.admin);
      await expect(s.server.auth.issueServiceToken({ clientAssertion: assertion(privateKey, a.clientId, issuer, {}, { kid: 'k1' }) })).resolves.toBeDefined();
    });

    test.each([
      { name: 'replayed', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { jti: 'once' }), replay: true },
      { name: 'expired', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { exp: nowS() - 120, iat: nowS() - 180 }) },
      { name: 'expiring too far ahead', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { exp: nowS() + 3600 }) },
      { name: 'without exp', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { exp: undefined }) },
      { name: 'without jti', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { jti: undefined }) },
      { name: 'for another audience', make: (k: KeyObject, id: string) => assertion(k, id, 'https://elsewhere') },
      { name: 'issued by another client', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { iss: 'sva_AAAAAAAAAAAAAAAAAAAAAA' }) },
      { name: 'with another subject', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { sub: 'someone' }) },
      { name: 'issued in the future', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, { iat: nowS() + 600 }) },
      { name: 'signed by another account’s key', make: (_k: KeyObject, id: string, iss: string) => assertion(keyPair().privateKey, id, iss) },
      { name: 'with HS256', make: (_k: KeyObject, id: string, iss: string) => jwt.sign({ iss: id, sub: id, aud: iss, jti: 'x', exp: nowS() + 60 }, 'k'.repeat(32)) },
      { name: 'with crit', make: (k: KeyObject, id: string, iss: string) => assertion(k, id, iss, {}, { crit: ['exp'] }) },
      { name: 'garbage', make: () => 'not.a.jwt' },
    ])('an assertion $name is refused', async ({ make, replay }) => {
      const { clientId } = await s.create('billing');
      const { privateKey, jwk } = keyPair();
      await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
      const a = make(privateKey, clientId, issuer);
      if (replay) await expect(s.server.auth.issueServiceToken({ clientId, clientAssertion: a })).resolves.toBeDefined();
      expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientAssertion: a }))).toEqual(INVALID_CLIENT);
    });
  });
});

describe('IssueServiceToken: nobody can lock a backend out by its public client id', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    // Calls arrive through a "proxy" on loopback that names each caller's address.
    s = await setup({ AUTH_TRUSTED_PROXIES: 'loopback' });
    nowS = () => Math.floor(s.server.clock.now() / 1000);
  });
  afterEach(() => s.server.close());

  const from = (address: string) => {
    const metadata = new Metadata();
    metadata.set('x-forwarded-for', address);
    return { metadata };
  };
  const wrong = (i: number) => `svs_${String(i % 10).repeat(43)}`;
  const codeOf = (p: Promise<unknown>) => p.then(() => status.OK, (e: { code: number }) => e.code);

  test('12 wrong secrets from 12 addresses, then the right one from a new address and from one of them: tokens', async () => {
    const { clientId, clientSecret } = await s.create('reports');
    for (let i = 0; i < 12; i++) expect(await statusOf(s.server.auth.issueServiceToken({ clientId, clientSecret: wrong(i) }, from(`203.0.113.${i + 1}`)))).toEqual(INVALID_CLIENT);
    await expect(s.server.auth.issueServiceToken({ clientId, clientSecret }, from('198.51.100.7'))).resolves.toMatchObject({ tokenType: 'Bearer' });
    await expect(s.server.auth.issueServiceToken({ clientId, clientSecret }, from('203.0.113.1'))).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  test('a distributed guessing run (40 addresses × 8 guesses, in parallel): the backend gets every token it asks for; the guessers are held back', async () => {
    const { clientId, clientSecret } = await s.create('reports');
    const backend = from('198.51.100.7');
    const attackerCodes: number[] = [];
    const backendCodes: number[] = [];
    for (let round = 0; round < 8; round++) {
      const guesses = Array.from({ length: 40 }, (_, a) => codeOf(s.server.auth.issueServiceToken({ clientId, clientSecret: wrong(round) }, from(`203.0.113.${a + 1}`))));
      backendCodes.push(await codeOf(s.server.auth.issueServiceToken({ clientId, clientSecret }, backend)));
      attackerCodes.push(...(await Promise.all(guesses)));
      s.server.clock.advance(1000);
    }
    expect(backendCodes).toEqual(Array(8).fill(status.OK));
    expect(attackerCodes.filter((c) => c === status.UNAUTHENTICATED).length).toBeGreaterThanOrEqual(40 * 5);
    expect(attackerCodes.filter((c) => c === status.RESOURCE_EXHAUSTED).length).toBeGreaterThan(0);
    expect(new Set(attackerCodes)).toEqual(new Set([status.UNAUTHENTICATED, status.RESOURCE_EXHAUSTED]));
  });

  test('secret failures from the backend’s own address do not hold back its key', async () => {
    const { clientId } = await s.create('reports');
    const { privateKey, jwk } = keyPair('k1');
    await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
    const shared = from('198.51.100.7');
    for (let i = 0; i < 8; i++) await codeOf(s.server.auth.issueServiceToken({ clientId, clientSecret: wrong(i) }, shared));
    expect(await codeOf(s.server.auth.issueServiceToken({ clientId, clientSecret: wrong(9) }, shared))).toBe(status.RESOURCE_EXHAUSTED);
    await expect(s.server.auth.issueServiceToken({ clientAssertion: assertion(privateKey, clientId, s.server.app.config.issuer, {}, { kid: 'k1' }) }, shared)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });
});

describeWithOpenssl('certificate-bound tokens (RFC 8705) over mTLS', () => {
  const clientOptions = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
  test('issued for a bound certificate; refused with another certificate; Validate tells them apart', async () => {
    const ca = createTestCa('bound');
    const serverCert = ca.issue('server', 'server');
    const mine = ca.issue('reports', 'client');
    const other = ca.issue('other', 'client');
    const thumbprint = (file: string) => createHash('sha256').update(new X509Certificate(pem(file)).raw).digest('base64url');
    const server = await startTestServer({ env: { AUTH_TLS_CERT: serverCert.cert, AUTH_TLS_KEY: serverCert.key, AUTH_TLS_CLIENT_CA: ca.caPem } });
    const over = (cert: { cert: string; key: string }) => credentials.createSsl(pem(ca.caPem), pem(cert.key), pem(cert.cert));
    const clients = [mine, other].map((c) => ({ auth: createClient(AuthService, server.address, over(c), clientOptions), secure: createClient(SecureService, server.address, over(c), clientOptions) }));
    const [asMine, asOther] = clients as [(typeof clients)[0], (typeof clients)[0]];
    try {
      // The account and its binding, made directly through the core (the test's own clients speak mTLS).
      const admin = new ServiceAccountAdmin({ accounts: server.app.store, random: systemRandom });
      const ctx = { log: silentLog };
      const { account } = await admin.create('reports', ['admin'], ctx);
      await admin.bindCertificate(account.id, thumbprint(mine.cert), ctx);

      expect(await statusOf(asOther.auth.issueServiceToken({ clientId: account.id }))).toEqual(INVALID_CLIENT);
      const issued = await asMine.auth.issueServiceToken({ clientId: account.id });
      expect(claimsOf(issued.accessToken)).toMatchObject({ cnf: { 'x5t#S256': thumbprint(mine.cert) } });
      await expect(asMine.secure.adminPing({}, bearer(issued.accessToken))).resolves.toMatchObject({ message: 'pong' });
      expect(await statusOf(asOther.secure.adminPing({}, bearer(issued.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: certificate mismatch' });
      expect(await asOther.auth.validate({ accessToken: issued.accessToken, certificateThumbprint: thumbprint(other.cert) })).toMatchObject({ active: false, reason: InactiveReason.CERTIFICATE_MISMATCH });
      expect(await asOther.auth.validate({ accessToken: issued.accessToken })).toMatchObject({ active: true, certificateThumbprint: thumbprint(mine.cert) });
      expect(await asOther.auth.validate({ accessToken: issued.accessToken, certificateThumbprint: thumbprint(mine.cert) })).toMatchObject({ active: true });
    } finally {
      for (const c of clients) {
        c.auth.close();
        c.secure.close();
      }
      await server.close();
    }
  });
});

function bigints(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? String(value) : value;
}

// PyJWT, as most backends' clients are: the kid of the JWK it holds, sent over grpcio (C-core).
const PYTHON_ASSERTION = `
import grpc, json, sys, time, uuid, jwt
addr, client_id, audience, pem, kid, now = sys.argv[1:7]
now = int(now)
claims = {'iss': client_id, 'sub': client_id, 'aud': audience, 'iat': now, 'exp': now + 60, 'jti': str(uuid.uuid4())}
assertion = jwt.encode(claims, pem, algorithm='ES256', headers={'kid': kid})
def field(n, s):
    b = s.encode(); out = bytes([n << 3 | 2]); l = len(b)
    while l > 127: out += bytes([l & 127 | 128]); l >>= 7
    return out + bytes([l]) + b
issue = grpc.insecure_channel(addr).unary_unary('/auth.v1.AuthService/IssueServiceToken', request_serializer=lambda r: r, response_deserializer=lambda b: b)
try:
    answer = issue(field(3, assertion), timeout=5)
    print(json.dumps({'code': 'OK', 'header': jwt.get_unverified_header(assertion), 'answer': answer.hex()}))
except grpc.RpcError as e:
    print(json.dumps({'code': e.code().name, 'details': e.details()}))
`;

describeNeeding(['python3-grpcio'], 'RFC 7523 assertions made by PyJWT, sent by a C-core client', () => {
  test('the kid of the client’s own JWK is accepted', async () => {
    const s = await setup();
    try {
      const { clientId } = await s.create('billing');
      const { privateKey, jwk } = keyPair('billing-2026');
      await s.server.admin.addServiceAccountKey({ serviceAccountId: clientId, publicKeyJwk: jwk }, s.admin);
      const pemKey = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const { lines, stderr } = await runPython(PYTHON_ASSERTION, [s.server.address, clientId, s.server.app.config.issuer, pemKey, 'billing-2026', String(Math.floor(s.server.clock.now() / 1000))]);
      expect(stderr).toBe('');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: 'OK', header: { alg: 'ES256', kid: 'billing-2026', typ: 'JWT' } });
      // The answer's access_token (field 1) is a token of the account.
      const answer = Buffer.from(String(lines[0]!.answer), 'hex');
      const token = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(answer.toString('latin1'))![0];
      expect(await s.server.auth.validate({ accessToken: token })).toMatchObject({ active: true, clientId });
    } finally {
      await s.server.close();
    }
  });
});
