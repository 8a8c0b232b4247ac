// better-auth as the bench runs it beside the service: email/password sign-in and the session
// check, on its PostgreSQL adapter (a node-postgres Pool of 10, the service's default pool size),
// rate limits off (the service's are off or not reached in the bench too).
// HASH=argon2id hashes as the service does (argon2id, 19 MiB, t=2, p=1, @node-rs/argon2);
// HASH=default keeps better-auth's own scrypt (N=16384, r=16, p=1, @noble/hashes).
// Started by bench/peers.js as a child process: PORT, DATABASE_URL, HASH; prints "listening" when up.
import http from 'node:http';
import argon2 from '@node-rs/argon2';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import pg from 'pg';

const port = Number(process.env.PORT);
const ARGON2ID = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const password = process.env.HASH === 'argon2id' ? { hash: (p) => argon2.hash(p, ARGON2ID), verify: ({ hash, password: p }) => argon2.verify(hash, p) } : undefined;

const auth = betterAuth({
  database: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }),
  baseURL: `http://127.0.0.1:${port}`,
  secret: 'the bench peer better-auth secret, 32 bytes or more',
  emailAndPassword: { enabled: true, ...(password ? { password } : {}) },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { level: 'error' },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
http.createServer(toNodeHandler(auth)).listen(port, '127.0.0.1', () => console.log('listening'));
