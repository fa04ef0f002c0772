import type { ServerObjectKind } from '../../../database/sql/rehearsal-globals.js';

// What a run's sealed files say they create server-wide, read from their text
// before anything runs: a role, database, tablespace or subscription named in
// a CREATE statement (in a .sql file, or a string of a JS/TS one) or in
// node-pg-migrate's pgm.createRole(). Only a CREATE counts, not any mention:
// a sweep may drop what is listed here hours after the rehearsal died, and a
// word the files merely use (a table called like someone's database) must not
// be enough. A name the files compute is not found here; the guard records it
// once a step has been seen creating it.

export interface CreatedInSource {
  kind: ServerObjectKind;
  name: string;
  /** The file (its path in the snapshot) whose text creates it. */
  file: string;
}

const KINDS: Record<string, ServerObjectKind> = { role: 'role', user: 'role', group: 'role', database: 'database', tablespace: 'tablespace', subscription: 'subscription' };
const IDENTIFIER = String.raw`"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*`;
// CREATE USER MAPPING FOR … creates no role.
const CREATE = new RegExp(String.raw`\bcreate\s+(role|user|group|database|tablespace|subscription)\s+(?!mapping\s+for\b)(?:if\s+not\s+exists\s+)?(${IDENTIFIER})`, 'gi');
// node-pg-migrate quotes the name it is given.
const CREATE_ROLE_CALL = /\bcreateRole\s*\(\s*(['"`])((?:(?!\1)[^\\$]|\\.)+)\1/g;

// PostgreSQL folds unquoted identifiers to lower case (ASCII letters only).
const identifier = (token: string): string =>
  token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token.replace(/[A-Z]/g, (c) => c.toLowerCase());

export function createdInSources(files: Array<{ file: string; text: string }>): CreatedInSource[] {
  const found = new Map<string, CreatedInSource>();
  const add = (kind: ServerObjectKind, name: string, file: string) => {
    if (name && !found.has(`${kind} ${name}`)) found.set(`${kind} ${name}`, { kind, name, file });
  };
  for (const { file, text } of files) {
    // SQL in a JS string: \" is the identifier's quote.
    for (const m of text.replace(/\\"/g, '"').matchAll(CREATE)) add(KINDS[m[1]!.toLowerCase()]!, identifier(m[2]!), file);
    for (const m of text.matchAll(CREATE_ROLE_CALL)) add('role', m[2]!.replace(/\\(.)/g, '$1'), file);
  }
  return [...found.values()];
}
