import assert from 'node:assert/strict';
import { bearer, type Subject, type TestApp } from './app.js';

/**
 * The API as the test subjects call it: `api('post', path, 'alice', body)`;
 * `runOf(id)` reads a run as a viewer. `app` is read at each call, so the
 * client can be made before the test file's app is started.
 */
export function apiClient(app: () => TestApp) {
  async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
    const req = app().http()[method](path).set({ authorization: bearer(who) });
    return body === undefined ? req : req.send(body);
  }
  const runOf = async (id: string) => (await api('get', `/v1/runs/${id}`, 'vic')).body;

  /**
   * Creates a staging run as alice (201), waits for its preflight and has bob
   * approve it as engineering; what the approval must have done is the
   * caller's to assert, from `approved`.
   */
  async function createAndApprove(description: string) {
    const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description });
    assert.equal(created.status, 201, created.text);
    await app().settle();
    const id = created.body.id as string;
    const approved = await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
    return { id, approved };
  }

  return { api, runOf, createAndApprove };
}
