import { strongestLock } from './lock-modes.js';
import type { LockMode } from './types.js';

/** What one statement (or one ALTER TABLE subcommand) does to the tables it names. */
export interface Effect {
  tables: string[];
  lock: LockMode;
  rewritesTable: boolean;
  buildsIndex: boolean;
  scansTable: boolean;
}

export function effect(lock: LockMode, tables: Array<string | undefined>, work: Partial<Omit<Effect, 'lock' | 'tables'>> = {}): Effect {
  return {
    tables: tables.filter((t): t is string => t !== undefined),
    lock,
    rewritesTable: work.rewritesTable ?? false,
    buildsIndex: work.buildsIndex ?? false,
    scansTable: work.scansTable ?? false,
  };
}

export function combine(effects: Effect[]): Effect {
  return {
    tables: [...new Set(effects.flatMap((e) => e.tables))],
    lock: strongestLock(effects.map((e) => e.lock)),
    rewritesTable: effects.some((e) => e.rewritesTable),
    buildsIndex: effects.some((e) => e.buildsIndex),
    scansTable: effects.some((e) => e.scansTable),
  };
}
