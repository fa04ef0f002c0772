// A bad enum value gets a 400 that names the allowed values, in the detail and
// in errors[].message, instead of Ajv's "must be equal to constant; must match
// a schema in anyOf".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { explainEnums } from '../../src/plugins/validation-messages.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'enum_msgs' });
});
after(() => t?.close());

describe('enum validation errors name the allowed values', () => {
  test('a body field that is a union of literals', async () => {
    const res = await t.http().post('/v1/runs/6f1c1f7e-0b43-4d7c-9a55-0d3b8a1e2f44/approvals').set('authorization', bearer('bob'))
      .send({ role: 'engineering', decision: 'maybe' });
    assert.equal(res.status, 400, res.text);
    assert.match(res.headers['content-type']!, /^application\/problem\+json/);
    assert.deepEqual(res.body.errors, [{ path: 'body/decision', message: 'must be one of: approve, reject' }]);
    assert.equal(res.body.detail, 'Invalid body: body/decision must be one of: approve, reject');
    assert.doesNotMatch(res.text, /equal to constant|anyOf/);
  });

  test('a nested body field', async () => {
    const res = await t.http().post('/v1/runs').set('authorization', bearer('alice'))
      .send({ environment: 'staging', description: 'x', schedule: { mode: 'later' } });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, [{ path: 'body/schedule/mode', message: 'must be one of: window, now, at' }]);
  });

  test('a query parameter with many values', async () => {
    const res = await t.http().get('/v1/runs?status=finished').set('authorization', bearer('vic'));
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.errors.length, 1, JSON.stringify(res.body.errors));
    assert.equal(res.body.errors[0].path, 'querystring/status');
    assert.match(res.body.errors[0].message, /^must be one of: created, preflight_running, .*, succeeded, .*, restored$/);
  });

  test('a plain enum keyword, and other unions left as they are', () => {
    const e = (keyword: string, schemaPath: string, params: Record<string, unknown>, message: string, instancePath = '/x') => ({ keyword, schemaPath, params, message, instancePath });
    assert.deepEqual(explainEnums([e('enum', '#/properties/x/enum', { allowedValues: ['a', 1] }, 'must be equal to one of the allowed values')]).map((x) => x.message), ['must be one of: a, 1']);
    const mixed = [e('type', '#/properties/x/anyOf/0/type', { type: 'integer' }, 'must be integer'), e('type', '#/properties/x/anyOf/1/type', { type: 'null' }, 'must be null'), e('anyOf', '#/properties/x/anyOf', {}, 'must match a schema in anyOf')];
    assert.deepEqual(explainEnums(mixed).map((x) => x.message), ['must be integer', 'must be null', 'must match a schema in anyOf']);
  });
});
