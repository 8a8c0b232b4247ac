import { describeWithPostgres, recordStatements } from '../helpers/postgres';
import { PASSWORD, startTestServer, type TestServer } from '../helpers/server';

/** Statements the service sends on its own, whatever the calls: the health check, the maintenance switch, the sweeper. */
const BACKGROUND = /pg_is_in_recovery|FROM auth_flags|^\s*DELETE FROM \w+ k WHERE/;

/**
 * What a Login costs PostgreSQL, pinned. Each round trip costs the database about 100 µs of CPU
 * and the service's main thread about as much (docs/performance.md), beside the hashing on the
 * same cores: a change that adds one should have to say so here.
 */
describeWithPostgres('a Login on PostgreSQL, statement by statement', (pg) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { AUTH_DATABASE_URL: await pg().createDatabase() } });
  });
  afterAll(() => server.close());

  test('nine round trips: the reservation (the address read with the account), the user, the clearing, the second-factor record, the session', async () => {
    await server.auth.register({ username: 'dana', password: PASSWORD });
    await server.auth.login({ username: 'dana', password: PASSWORD });
    const { sent, spy } = recordStatements();
    try {
      await server.auth.login({ username: 'dana', password: PASSWORD });
    } finally {
      spy.mockRestore();
    }
    const statements = sent.filter((q) => !BACKGROUND.test(q)).map((q) => q.replace(/\s+/g, ' ').trim());
    expect(statements.map((q) => q.split(' ')[0])).toEqual(['SELECT', 'INSERT', 'SELECT', 'DELETE', 'SELECT', 'BEGIN', 'SELECT', 'WITH', 'SELECT']);
    expect(statements[0]).toContain('LEFT JOIN auth_attempts a ON a.key = $1 LEFT JOIN auth_attempts g ON g.key = $3');
    expect(statements[2]).toContain('FROM auth_users WHERE username = $1');
    expect(statements[4]).toContain('FROM auth_user_secrets WHERE user_id = $1');
    expect(statements[6]).toMatch(/FROM auth_users WHERE id = \$1 FOR UPDATE/);
    expect(statements[8]).toMatch(/^SELECT auth_on_time\(\d+\); COMMIT$/);
  });
});
