import { maybeOne, type Queryable } from '../../database/db.js';
import { activeRunFor } from '../../database/sql/runs.js';
import { conflict, type ServiceError } from '../errors.js';
import { ACTIVE_STATUSES } from './state-machine.js';

/**
 * The 409 for a change the partial unique index runs_one_active_per_environment
 * refused: it names the run that holds the environment and what to do (`next`).
 */
export async function activeRunConflict(db: Queryable, environment: string, next: string): Promise<ServiceError> {
  const active = await maybeOne<{ id: string; status: string }>(db, activeRunFor(environment, ACTIVE_STATUSES));
  return conflict(
    `Environment "${environment}" already has an active run${active ? ` (${active.id}, ${active.status})` : ''}; ${next}`,
    { activeRunId: active?.id ?? null },
  );
}
