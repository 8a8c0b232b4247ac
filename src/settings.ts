/**
 * Every setting of the service, as data: its environment variable, how it is parsed, its default,
 * its bounds, whether it is secret, and its documentation. `loadConfig` reads the typed
 * configuration from this table, `grpc-auth check-config` reports against it, and docs/configuration.md's
 * configuration table is generated from it (`npm run docs`; test/docs/error-catalogue.test.ts fails when
 * they differ). Durations are written with a unit (`900s`, `15m`) and carried in milliseconds.
 */
export interface Setting<T> {
  readonly variable: string;
  /** The table's "Meaning" cell. */
  readonly doc: string;
  /** The table's "Default" cell. */
  readonly shownDefault: string;
  /** Never printed: check-config masks it. */
  readonly secret: boolean;
  /** A URL: printed (by check-config, in errors) with its user info and query masked, which may hold credentials. */
  readonly url?: boolean;
  /** Parses a raw value (undefined when unset or blank); throws SettingError with the reason. */
  read(raw: string | undefined): T;
}

/** Why one value was refused; the loader prefixes the variable's name. */
export class SettingError extends Error {
  override readonly name = 'SettingError';
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "900", "900s", "15m", "12h", "30d", "500ms" → milliseconds; a bare number is seconds. */
export function parseDurationMs(raw: string): number {
  const match = /^(\d{1,9})(ms|[smhd]?)$/.exec(raw.trim());
  if (!match) throw new SettingError(`must be a duration such as 900s, 15m, 12h or 30d (got "${raw}")`);
  return Number(match[1]) * UNITS[match[2] || 's']!;
}

/** 900000 → "15m": the largest unit that divides the value. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms !== 0 && ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  return ms === 0 ? '0s' : `${ms}ms`;
}

/** What a value must look like: a test and how to say it. */
export interface Pattern {
  test(value: string): boolean;
  readonly says: string;
  /** What is wrong with a value that fails the test, when it can say more than `says` (never a secret part). */
  why?(value: string): string | undefined;
}

interface Common {
  readonly doc: string;
  readonly secret?: boolean;
  readonly url?: boolean;
}

/**
 * A URL as it may be shown: user info and query (where credentials and tokens ride) masked. The
 * user info ends at the last `@`, as URL parsers and node-postgres read it, so a password holding
 * `@`, `/` or `?` is masked whole; a value that is no URL is masked whole.
 */
export function maskUrl(value: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value);
  if (!scheme) return '****';
  const rest = value.slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  const shown = at >= 0 ? `****@${rest.slice(at + 1)}` : rest;
  const query = shown.search(/[?#]/);
  return scheme[0] + (query >= 0 ? `${shown.slice(0, query)}?****` : shown);
}

export function duration(variable: string, o: Common & { default: string; min: string; max: string }): Setting<number> {
  const [min, max, fallback] = [parseDurationMs(o.min), parseDurationMs(o.max), parseDurationMs(o.default)];
  return {
    variable,
    doc: `${o.doc} (${o.min} to ${o.max})`,
    shownDefault: o.default,
    secret: false,
    read(raw) {
      if (raw === undefined) return fallback;
      const ms = parseDurationMs(raw);
      if (ms < min || ms > max) throw new SettingError(`must be between ${o.min} and ${o.max} (got ${raw})`);
      return ms;
    },
  };
}

export function count(variable: string, o: Common & { default: number; min: number; max: number }): Setting<number> {
  return {
    variable,
    doc: `${o.doc} (${o.min} to ${o.max})`,
    shownDefault: String(o.default),
    secret: false,
    read(raw) {
      if (raw === undefined) return o.default;
      if (!/^\d{1,9}$/.test(raw) || Number(raw) < o.min || Number(raw) > o.max) throw new SettingError(`must be a whole number from ${o.min} to ${o.max} (got "${raw}")`);
      return Number(raw);
    },
  };
}

export function choice<const T extends string>(variable: string, allowed: readonly T[], o: Common & { default: T }): Setting<T> {
  return {
    variable,
    doc: o.doc,
    shownDefault: o.default,
    secret: false,
    read(raw) {
      if (raw === undefined) return o.default;
      if (!(allowed as readonly string[]).includes(raw)) throw new SettingError(`must be one of ${allowed.join(', ')} (got "${raw}")`);
      return raw as T;
    },
  };
}

export function flag(variable: string, o: Common): Setting<boolean> {
  const inner = choice(variable, ['true', 'false'], { ...o, default: 'false' });
  return { ...inner, read: (raw) => inner.read(raw) === 'true' };
}

/** A free-form value; undefined when unset (the shown default says what that means). */
export function text(variable: string, o: Common & { shown: string; pattern?: Pattern }): Setting<string | undefined> {
  return {
    variable,
    doc: o.doc,
    shownDefault: o.shown,
    secret: o.secret ?? false,
    url: o.url ?? false,
    read(raw) {
      if (raw !== undefined && o.pattern && !o.pattern.test(raw)) {
        // A secret's value is never echoed back; a URL's credentials neither.
        const why = o.pattern.why?.(raw);
        throw new SettingError(`must be ${o.pattern.says}${why ? ` (${why})` : ''}${o.secret ? '' : ` (got "${o.url ? maskUrl(raw) : raw}")`}`);
      }
      return raw;
    },
  };
}

export function textWithDefault(variable: string, o: Common & { default: string; pattern?: Pattern }): Setting<string> {
  const inner = text(variable, { ...o, shown: o.default });
  return { ...inner, read: (raw) => inner.read(raw) ?? o.default };
}

const HOST_PORT_SHAPE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function isHostPort(value: string): boolean {
  const match = HOST_PORT_SHAPE.exec(value);
  return match !== null && Number(match[2]) <= 65535;
}

export const HOST_PORT: Pattern = { test: isHostPort, says: 'host:port, for example 127.0.0.1:50051' };

/** Comma-separated values, each checked by `item`; an empty list when unset. */
export function list(variable: string, o: Common & { shown: string; item?: (value: string) => string | undefined }): Setting<readonly string[]> {
  return {
    variable,
    doc: o.doc,
    shownDefault: o.shown,
    secret: false,
    read(raw) {
      if (raw === undefined) return [];
      const values = raw.split(',').map((v) => v.trim());
      for (const value of values) {
        if (value === '') throw new SettingError(`has an empty item (got "${raw}")`);
        const problem = o.item?.(value);
        if (problem !== undefined) throw new SettingError(`${problem} (got "${value}")`);
      }
      return values;
    },
  };
}
