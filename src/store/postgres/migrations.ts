import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleDir } from '../../module-dir.js';
import { StoreSetupError } from '../store.js';

/** The little of a pg connection the migrations use (only base.ts imports pg; it hands its pool in). */
export interface SqlRunner {
  query<R extends object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/** A pool of such connections: `pg.Pool` is one. */
export interface SqlPool extends SqlRunner {
  connect(): Promise<SqlRunner & { release(err?: Error | boolean): void }>;
}

/** A versioned SQL file of migrations/postgres: `0001_initial.sql` is version 1. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The directory the package ships its migrations in (beside dist/, or the repository's). */
export const MIGRATIONS_DIR = [join(moduleDir, '..', 'migrations', 'postgres'), join(moduleDir, '..', '..', 'migrations', 'postgres'), join(moduleDir, '..', '..', '..', 'migrations', 'postgres')].find((path) => existsSync(path)) ?? join(moduleDir, '..', 'migrations', 'postgres');

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Every migration this release knows, in version order; versions must run 1, 2, 3… without gaps. */
export function knownMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => FILE.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, m[0]), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations in ${dir} skip from ${i} to ${m.version}`);
  });
  return migrations;
}

/** Names the advisory lock every instance takes to migrate: "grpc-auth" as a 64-bit key. */
export const MIGRATION_LOCK = 0x67727063_61757468n;

const HISTORY = `CREATE TABLE IF NOT EXISTS auth_schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

export interface SchemaState {
  /** The newest version applied to the database (0: none). */
  readonly applied: number;
  /** The newest version this release knows. */
  readonly known: number;
}

/** What the database holds, without changing it. */
export async function schemaState(pool: SqlPool, migrations = knownMigrations()): Promise<SchemaState> {
  const known = migrations.at(-1)?.version ?? 0;
  const exists = await pool.query<{ present: boolean }>("SELECT to_regclass('auth_schema_migrations') IS NOT NULL AS present");
  if (!exists.rows[0]!.present) return { applied: 0, known };
  const { rows } = await pool.query<{ v: number | null }>('SELECT max(version)::integer AS v FROM auth_schema_migrations');
  return { applied: rows[0]!.v ?? 0, known };
}

/** Refuses a database whose schema is newer than this release: a rollback must not write to it. */
export function checkNotNewer(state: SchemaState): void {
  if (state.applied > state.known) {
    throw new StoreSetupError(
      `the database's schema is at version ${state.applied}, newer than this release knows (${state.known}): run the release that migrated it, or a newer one`,
    );
  }
}

/**
 * Applies the pending migrations in one transaction under an advisory lock, so instances that
 * start together migrate once: the first takes the lock and migrates, the others wait for it and
 * then find nothing to do. Returns the versions it applied. A database that is newer than this
 * release is refused (StoreSetupError); a failing migration rolls back and changes nothing.
 */
export async function migrate(pool: SqlPool, migrations = knownMigrations()): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      // A lock held until the transaction ends: released by COMMIT, ROLLBACK or a lost connection.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
      await client.query(HISTORY);
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version)::integer AS v FROM auth_schema_migrations');
      const applied = rows[0]!.v ?? 0;
      checkNotNewer({ applied, known: migrations.at(-1)?.version ?? 0 });
      const done: number[] = [];
      for (const m of migrations.filter((m) => m.version > applied)) {
        await client.query(m.sql);
        await client.query('INSERT INTO auth_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        done.push(m.version);
      }
      await client.query('COMMIT');
      return done;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}
