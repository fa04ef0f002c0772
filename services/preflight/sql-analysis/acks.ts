import { unwrap } from './ast.js';
import { splitStatements } from './parse.js';
import { relationForms, touchedObjects } from './touched.js';
import type { Acknowledgement } from './types.js';

// `-- lint-ack: <rule-id> <reason>` in SQL, `// lint-ack: ...` in JS
// migrations. The reason is mandatory: an acknowledgement is a record of why
// the risk was accepted, for whoever reads the report later.
// The reason runs to the end of the line, or to the end of the block comment
// or one-line `pgm.sql('...')` string the ack sits in.
//
// An ack covers the next statement only: in a .sql file the first statement
// after it, in a JS/TS migration the first pgm call (pgm.sql(...), a builder
// such as pgm.dropColumn(...)) after it, or a statement of a pgm.sql string
// that follows it inside the same string. `lint-ack: <rule>(<object>) <reason>`
// instead covers, anywhere in the file, the findings of that rule whose
// statement touches the object (`users.legacy_email`, `public.users`, an
// index name). SQL a JS builder generated appears nowhere in the file, so
// only an ack naming the object can cover it.
const ACK = /(?:--|\/\/)[ \t]*lint-ack:[ \t]*([a-z0-9-]+)(?:\(([^()\s]+)\))?[ \t]*(.*?)[ \t]*(?:\*\/|['"`][ \t]*\)|$)/gim;

export interface FileAck {
  rule: string;
  /** Lower-case object name, quotes removed; null: the next statement. */
  object: string | null;
  reason: string;
  /** Offset just past the comment: the statement or call after it is the one it covers. */
  end: number;
}

interface Acknowledgeable {
  rule: string;
  severity: string;
  migration: string | null;
  statement: string | null;
  acknowledged: Acknowledgement | null;
}

/** The acks in a migration file's text; acks without a reason are ignored. */
export function parseAcks(source: string): FileAck[] {
  const acks: FileAck[] = [];
  for (const match of source.matchAll(ACK)) {
    const reason = match[3]?.trim();
    if (!match[1] || !reason) continue;
    acks.push({ rule: match[1].toLowerCase(), object: match[2] ? normaliseObject(match[2]) : null, reason, end: (match.index ?? 0) + match[0].length });
  }
  return acks;
}

export function normaliseObject(name: string): string {
  return name.replace(/"/g, '').toLowerCase();
}

const fileAck = (reason: string): Acknowledgement => ({ reason, by: null, at: null, via: 'file' });

/** Where the statements of a migration sit in its file, and the places an ack can point at. */
export interface SourceMap {
  /** Sorted offsets of every statement found in the file and (JS) of every pgm call. */
  anchors: number[];
  /** The anchors that lead to a statement: its own offset and (JS) the start of the pgm call it sits in; [] when not found. */
  anchorsOf(statementOffset: number | null): number[];
  locate(statement: string, from?: number): number | null;
}

/** The names the up/down functions give their MigrationBuilder parameter (`pgm` unless the file says otherwise). */
function builderNames(source: string): string[] {
  const found = new Set<string>(['pgm']);
  const patterns = [
    /\b(?:up|down)\s*[:=]\s*(?:async\s+)?(?:function\s*[\w$]*\s*)?\(\s*([A-Za-z_$][\w$]*)/g,
    /\b(?:up|down)\s*[:=]\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/g,
    /\bfunction\s+(?:up|down)\s*\(\s*([A-Za-z_$][\w$]*)/g,
    /^\s*(?:async\s+)?(?:up|down)\s*\(\s*([A-Za-z_$][\w$]*)/gm,
  ];
  for (const p of patterns) for (const m of source.matchAll(p)) if (m[1]) found.add(m[1]);
  return [...found];
}

// Builder methods that send no SQL of their own: an ack before them points at the call after.
const NO_SQL = new Set(['noTransaction', 'func']);

function pgmCalls(source: string): number[] {
  const names = builderNames(source).map((n) => n.replace(/\$/g, '\\$')).join('|');
  const call = new RegExp(`(?<![\\w$.])(?:${names})\\s*\\.\\s*(?:db\\s*\\.\\s*)?([A-Za-z]+)\\s*\\(`, 'g');
  return [...source.matchAll(call)].filter((m) => !NO_SQL.has(m[1] ?? '')).map((m) => m.index ?? 0);
}

export function mapSource(source: string, fileType: 'sql' | 'js'): SourceMap {
  const calls = fileType === 'js' ? pgmCalls(source) : [];
  const statements: number[] = [];
  let cursor = 0;
  const callOf = (offset: number) => calls.filter((c) => c <= offset).at(-1);
  let sorted: number[] | null = null;
  const map: SourceMap = {
    get anchors() {
      sorted ??= [...new Set([...calls, ...statements])].sort((a, b) => a - b);
      return sorted;
    },
    anchorsOf(offset) {
      if (offset === null) return [];
      const call = callOf(offset);
      return call === undefined ? [offset] : [offset, call];
    },
    // In file order: each statement is searched for after the one before it, then (a helper function's) from the top.
    locate(statement, from = cursor) {
      // node-pg-migrate ends what it sends with a `;` the file need not have.
      const text = statement.trim().replace(/;+$/, '').trimEnd();
      const firstLine = text.split('\n').map((l) => l.trim()).find(Boolean);
      for (const start of from === 0 ? [0] : [from, 0]) {
        for (const probe of [text, firstLine]) {
          if (!probe || probe.length < 4) continue;
          const at = source.indexOf(probe, start);
          if (at < 0) continue;
          statements.push(at);
          sorted = null;
          cursor = at + 1;
          return at;
        }
      }
      return null;
    },
  };
  return map;
}

/** The ack, if any, that covers a finding of `rule` on a statement at these anchors touching these objects. */
export function ackFor(rule: string, anchors: number[], objects: ReadonlySet<string>, acks: FileAck[], map: SourceMap): FileAck | undefined {
  const all = map.anchors;
  return acks.find((a) => {
    if (a.rule !== rule) return false;
    if (a.object !== null) return objects.has(a.object);
    const next = all.find((x) => x >= a.end);
    return next !== undefined && anchors.includes(next);
  });
}

/** An acknowledged finding stays in the report but as a warning, so it no longer fails preflight. */
export function acknowledge<T extends Acknowledgeable>(finding: T, ack: Acknowledgement): T {
  return { ...finding, severity: finding.severity === 'error' ? 'warning' : finding.severity, acknowledged: ack };
}

export function withFileAck<T extends Acknowledgeable>(finding: T, ack: FileAck | undefined): T {
  return ack && !finding.acknowledged ? acknowledge(finding, fileAck(ack.reason)) : finding;
}

/** The objects a statement touches, parsed from its text (empty when it does not parse). */
async function objectsOfStatement(statement: string | null, relation: string | undefined): Promise<Set<string>> {
  const out = new Set<string>();
  if (relation) relationForms(relation).forEach((o) => out.add(o));
  if (!statement) return out;
  try {
    for (const s of await splitStatements(statement)) {
      const parsed = unwrap(s.node);
      if (parsed) for (const o of touchedObjects(parsed[0], parsed[1])) out.add(o);
    }
  } catch {
    // A command tag or a partial statement: only the relation is known.
  }
  return out;
}

/**
 * For findings that did not come from the linter (a failed rehearsal, what
 * the rehearsal observed): applies the acks in each finding's own migration
 * file. A finding whose statement is found in the file is covered by the ack
 * just before it; otherwise only by an ack naming an object it touches.
 */
export async function applyAcknowledgements<T extends Acknowledgeable & { relation?: string }>(findings: T[], sources: ReadonlyMap<string, string>, fileTypes?: ReadonlyMap<string, 'sql' | 'js'>): Promise<T[]> {
  const out: T[] = [];
  for (const f of findings) {
    const source = f.migration === null ? undefined : sources.get(f.migration);
    const acks = source === undefined ? [] : parseAcks(source).filter((a) => a.rule === f.rule);
    if (source === undefined || acks.length === 0) {
      out.push(f);
      continue;
    }
    const fileType = fileTypes?.get(f.migration!) ?? 'js';
    const map = mapSource(source, fileType);
    // Every statement of a .sql file is a place an ack can point at, not only this one.
    if (fileType === 'sql') for (const s of await splitStatements(source).catch(() => [])) map.locate(s.text);
    const at = f.statement ? map.locate(f.statement, 0) : null;
    out.push(withFileAck(f, ackFor(f.rule, map.anchorsOf(at), await objectsOfStatement(f.statement, f.relation), acks, map)));
  }
  return out;
}
