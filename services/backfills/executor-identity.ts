/** The actor of the executor's own audit events (details.owner says which process). */
export const EXECUTOR_ACTOR = 'backfills';
export const APPLICATION_NAME = 'starforge-backfill';
