// Backfill jobs keep their audit trail on the target database, in the
// transaction of each state change (sfm_backfill.backfill_events). The service
// copies every such event into run_events (run_id NULL, type 'backfill.<status>',
// details.eventId = the target event's uuid). This index makes the copy
// idempotent: a copy retried after a crash, or made by two replicas at once,
// inserts nothing the second time (INSERT ... ON CONFLICT DO NOTHING).

export const up = (pgm) => {
  pgm.sql(`CREATE UNIQUE INDEX run_events_backfill_event_id ON run_events ((details->>'eventId')) WHERE type LIKE 'backfill.%'`);
};

export const down = (pgm) => {
  pgm.sql('DROP INDEX run_events_backfill_event_id');
};
