import { createHash } from 'node:crypto';
import { ROLES, subjectKey, type Role } from '../../services/principal.js';
import { ConfigError } from '../../services/environments/config-error.js';

export { ROLES, type Role };

/** A caller the service knows; only the sha256 of the token is kept in memory. */
export interface TokenEntry {
  subject: string;
  roles: Role[];
  sha256: Buffer;
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Parses the AUTH_TOKENS JSON; `key` names where it came from for error messages. Never echoes token values. */
export function parseAuthTokens(json: string, key: string): TokenEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError(key, 'is not valid JSON (expected an array of {subject, roles, token|sha256})');
  }
  if (!Array.isArray(parsed)) throw new ConfigError(key, 'must be a JSON array of {subject, roles, token|sha256}');
  // Keyed by subjectKey: two spellings of one person would let them approve their own run.
  const seenSubjects = new Map<string, { at: string; subject: string }>();
  const seenHashes = new Set<string>();
  return parsed.map((raw: unknown, i) => {
    const at = `${key}[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(at, 'must be an object');
    const entry = raw as Record<string, unknown>;
    for (const field of Object.keys(entry)) {
      if (!['subject', 'roles', 'token', 'sha256'].includes(field)) throw new ConfigError(`${at}.${field}`, 'is not a known field');
    }
    const { subject, roles, token, sha256 } = entry;
    if (typeof subject !== 'string' || !/^[A-Za-z0-9._@-]{1,100}$/.test(subject)) {
      throw new ConfigError(`${at}.subject`, 'must be 1-100 characters of letters, digits, ".", "_", "@" or "-"');
    }
    const earlier = seenSubjects.get(subjectKey(subject));
    if (earlier?.subject === subject) throw new ConfigError(`${at}.subject`, `"${subject}" appears twice (also ${earlier.at}.subject)`);
    if (earlier) {
      throw new ConfigError(`${at}.subject`, `"${subject}" and "${earlier.subject}" (${earlier.at}.subject) differ only in case or Unicode form; `
        + 'subjects are compared case-insensitively after NFKC normalization, so they would be one person holding two tokens. Give each person one subject');
    }
    seenSubjects.set(subjectKey(subject), { at, subject });
    if (!Array.isArray(roles) || roles.length === 0) throw new ConfigError(`${at}.roles`, `must be a non-empty array of ${ROLES.join(', ')}`);
    for (const role of roles) {
      if (!ROLES.includes(role as Role)) throw new ConfigError(`${at}.roles`, `unknown role "${String(role)}" (known: ${ROLES.join(', ')})`);
    }
    if ((token === undefined) === (sha256 === undefined)) throw new ConfigError(at, 'needs exactly one of "token" or "sha256"');
    let digest: string;
    if (token !== undefined) {
      if (typeof token !== 'string' || token.length < 16) throw new ConfigError(`${at}.token`, 'must be a string of at least 16 characters');
      digest = sha256Hex(token);
    } else {
      if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw new ConfigError(`${at}.sha256`, 'must be 64 hex characters');
      digest = sha256.toLowerCase();
    }
    if (seenHashes.has(digest)) throw new ConfigError(at, 'uses the same token as an earlier entry');
    seenHashes.add(digest);
    return { subject, roles: [...new Set(roles as Role[])], sha256: Buffer.from(digest, 'hex') };
  });
}
