import type pg from 'pg';
import type { EnvironmentConfig } from '../../environments/model.js';
import type { SeededTable } from './types.js';

/** What a seeding mode works with: a read-only session on the target and one on the copy. */
export interface SeedContext {
  environment: EnvironmentConfig;
  target: pg.ClientBase;
  targetUrl: string;
  copy: pg.ClientBase;
  copyUrl: string;
  sampleRows: number;
  secrets: string[];
}

export interface SeedOutcome {
  tables: SeededTable[];
  foreignKeysNotValid: string[];
  source: string;
  notes: string[];
}

/** The data cannot be copied; the rehearsal goes on with the schema alone. */
export class SeedSkipped extends Error {
  constructor(message: string, readonly tooLarge = false) {
    super(message);
    this.name = 'SeedSkipped';
  }
}
