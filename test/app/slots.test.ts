// slots(n): at most n jobs at once, the rest in the order they came; a job
// that throws frees its slot. The preflight service runs its preflights
// through one (each holds a control connection for its whole length).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slots } from '../../services/slots.js';

const tick = () => new Promise((r) => setImmediate(r));

test('at most n at once, the waiting ones in order, a failure frees its slot', async () => {
  const run = slots(2);
  let active = 0;
  let most = 0;
  const started: number[] = [];
  const gates = Array.from({ length: 5 }, () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    return { gate, open };
  });
  const jobs = gates.map((g, i) => run(async () => {
    started.push(i);
    active++;
    most = Math.max(most, active);
    await g.gate;
    active--;
    if (i === 1) throw new Error('job 1 fails');
    return i;
  }));
  await tick();
  assert.deepEqual(started, [0, 1], 'two start, three wait');
  gates[1]!.open();
  await assert.rejects(jobs[1]!, /job 1 fails/);
  await tick();
  assert.deepEqual(started, [0, 1, 2], 'the failed job gave its slot to the first waiting');
  for (const g of gates) g.open();
  assert.deepEqual(await Promise.all([jobs[0], jobs[2], jobs[3], jobs[4]]), [0, 2, 3, 4]);
  assert.deepEqual(started, [0, 1, 2, 3, 4], 'in the order they came');
  assert.equal(most, 2);
  // All slots free again: the next one starts at once.
  let ran = false;
  await run(async () => {
    ran = true;
  });
  assert.ok(ran);
});
