// Live progress of a run's long step (which migration, index build or backup
// phase, done/total), kept apart from apply_state so frequent samples neither
// bump updated_at nor rewrite the (large) apply_state document.

export const up = (pgm) => {
  pgm.addColumn('runs', { progress: { type: 'jsonb' } });
};

export const down = (pgm) => {
  pgm.dropColumn('runs', 'progress');
};
