import type pg from 'pg';
import { exec, rows } from '../../database/db.js';
import { appendRunLog, runLogs } from '../../database/sql/apply.js';

export type LogLevel = 'info' | 'warn' | 'error';

/** Appends lines to a run's apply log (GET /v1/runs/:id/logs), in order. */
export function runLogger(control: pg.Pool, runId: string) {
  let chain: Promise<unknown> = Promise.resolve();
  const write = (phase: string, level: LogLevel, message: string) => {
    // Lines are chained so they land in the order they were written, even
    // when callers hand a synchronous log callback to helpers.
    chain = chain.then(() => exec(control, appendRunLog(runId, phase, level, message))).catch(() => undefined);
    return chain;
  };
  return {
    write,
    /** A synchronous `(line) => void` for helpers that log as they go. */
    phase: (phase: string) => (line: string) => void write(phase, 'info', line),
    flush: () => chain,
  };
}

export type RunLogger = ReturnType<typeof runLogger>;

/** The log as plain text: one line per entry. */
export async function renderRunLog(control: pg.Pool, runId: string): Promise<string> {
  const lines = await rows<{ phase: string; level: string; message: string; created_at: Date }>(control, runLogs(runId));
  return lines.map((l) => `${l.created_at.toISOString()} [${l.phase}] ${l.level.toUpperCase()} ${l.message}`).join('\n') + (lines.length ? '\n' : '');
}
