// PostgreSQL SQLSTATE codes the service reacts to by name.
export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
export const CHECK_VIOLATION = '23514';
export const LOCK_NOT_AVAILABLE = '55P03';
export const QUERY_CANCELED = '57014';
export const INVALID_CATALOG_NAME = '3D000';
export const UNDEFINED_TABLE = '42P01';
export const INVALID_PASSWORD = '28P01';
export const INVALID_AUTHORIZATION = '28000';
export const RAISE_EXCEPTION = 'P0001';
export const DEPENDENT_OBJECTS_STILL_EXIST = '2BP01';

export interface PgError extends Error {
  code?: string;
  constraint?: string;
}

export function isPgError(err: unknown, code: string): err is PgError {
  return typeof err === 'object' && err !== null && (err as PgError).code === code;
}

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  [INVALID_PASSWORD]: 'authentication failed',
  [INVALID_AUTHORIZATION]: 'authorization rejected',
  [INVALID_CATALOG_NAME]: 'database does not exist',
  '53300': 'too many connections',
  '57P03': 'server is starting up or shutting down',
};

/**
 * A short reason for a connection failure that is safe to log and return:
 * pg's own messages can carry host names, user names and database names.
 */
export function describeConnectionError(err: unknown): string {
  const e = err as PgError & { errno?: string };
  const code = e?.code ?? '';
  if (CONNECTION_CODES[code]) return `${CONNECTION_CODES[code]} (${code})`;
  if (/timeout/i.test(e?.message ?? '')) return 'connection timed out';
  if (/Connection terminated|not queryable/i.test(e?.message ?? '')) return 'connection lost';
  return code ? `connection failed (${code})` : 'connection failed';
}

/** Removes every occurrence of the given secrets (URLs, passwords) from a message. */
export function scrubSecrets(message: string, secrets: Array<string | undefined>): string {
  let out = message;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join('[redacted]');
    try {
      const url = new URL(secret);
      if (url.password) out = out.split(decodeURIComponent(url.password)).join('[redacted]');
    } catch {
      /* not a URL */
    }
  }
  // Any remaining connection string: keep the scheme, drop credentials and host.
  return out.replace(/postgres(?:ql)?:\/\/[^\s'"]+/gi, 'postgres://[redacted]');
}

const CONNECTION_FAILURE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE',
  INVALID_PASSWORD, INVALID_AUTHORIZATION, INVALID_CATALOG_NAME, '53300', '57P01', '57P02', '57P03',
  '08000', '08001', '08003', '08004', '08006',
]);

/** True for errors that mean "the database cannot be reached", as opposed to a failed statement. */
export function isConnectionError(err: unknown): boolean {
  const e = err as PgError | undefined;
  if (!e || typeof e !== 'object') return false;
  if (e.code && CONNECTION_FAILURE_CODES.has(e.code)) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|encountered a connection error and is not queryable/i.test(e.message ?? '');
}
