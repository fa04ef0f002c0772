// SCHEDULER / SCHEDULER_TICK_SECONDS: validated at start-up, naming the key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { tickExpression } from '../../services/scheduler/scheduler-service.js';

test('SCHEDULER_TICK_SECONDS defaults to 5 and takes divisors of 60 only', async () => {
  assert.equal((await loadConfig({})).schedulerTickSeconds, 5);
  assert.equal((await loadConfig({ SCHEDULER_TICK_SECONDS: '1' })).schedulerTickSeconds, 1);
  assert.equal((await loadConfig({ SCHEDULER_TICK_SECONDS: '60' })).schedulerTickSeconds, 60);
  for (const bad of ['0', '7', '61', '1.5', 'soon', '-5']) {
    await assert.rejects(loadConfig({ SCHEDULER_TICK_SECONDS: bad }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, 'SCHEDULER_TICK_SECONDS');
      assert.match(err.message, /divisor of 60/);
      return true;
    }, bad);
  }
  assert.equal((await loadConfig({ SCHEDULER: 'off' })).scheduler, false);
});

test('the tick expression fires every n seconds', () => {
  assert.equal(tickExpression(5), '*/5 * * * * *');
  assert.equal(tickExpression(1), '*/1 * * * * *');
  assert.equal(tickExpression(60), '0 * * * * *');
});
