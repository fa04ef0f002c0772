// Scheduler: who is applying a run, and until when that claim holds.

export const up = (pgm) => {
  // Set in the transaction that moves a run to applying, renewed by a
  // heartbeat while the apply runs. An in-flight run whose lease expired (and
  // whose apply lock nobody holds) was left by a dead process: the sweep marks
  // it interrupted.
  pgm.addColumns('runs', {
    lease_owner: { type: 'text' },
    lease_expires_at: { type: 'timestamptz' },
  });
  // The tick's question: which scheduled runs are due?
  pgm.createIndex('runs', ['scheduled_for'], { name: 'runs_scheduled_due', where: `status = 'scheduled'` });
  // The sweep's question: which in-flight runs have a lapsed lease?
  pgm.createIndex('runs', ['lease_expires_at'], { name: 'runs_in_flight_lease', where: `status IN ('applying', 'verifying', 'monitoring')` });
};

export const down = (pgm) => {
  pgm.dropIndex('runs', ['lease_expires_at'], { name: 'runs_in_flight_lease' });
  pgm.dropIndex('runs', ['scheduled_for'], { name: 'runs_scheduled_due' });
  pgm.dropColumns('runs', ['lease_owner', 'lease_expires_at']);
};
