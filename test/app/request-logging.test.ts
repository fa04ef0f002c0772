// Probes and scrapes (/healthz, /readyz, /metrics) come every few seconds
// from load balancers, the image's HEALTHCHECK and Prometheus: their request
// log lines are at debug, so at the default info level the log shows the
// API's requests, not a wall of probes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';

interface Line {
  level: number;
  msg: string;
  req?: { url: string };
  reqId?: string;
}

async function logged(level: 'info' | 'debug', requests: (t: TestApp) => Promise<void>): Promise<Line[]> {
  const lines: string[] = [];
  const t = await startTestApp({ label: `reqlog_${level}`, env: { LOG_LEVEL: level }, logStream: { write: (line) => void lines.push(line) } });
  try {
    await requests(t);
  } finally {
    await t.close();
  }
  return lines.map((l) => JSON.parse(l) as Line);
}

const probes = async (t: TestApp) => {
  for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal((await t.http().get(path)).status, 200, path);
  assert.equal((await t.http().get('/v1/runs').set('authorization', bearer('vic'))).status, 200);
};

/** reqIds of requests to `url`, and the levels of all their request lines. */
function requestLines(lines: Line[], url: string): Line[] {
  const ids = new Set(lines.filter((l) => l.msg === 'incoming request' && l.req?.url === url).map((l) => l.reqId));
  return lines.filter((l) => l.reqId !== undefined && ids.has(l.reqId) && ['incoming request', 'request completed'].includes(l.msg));
}

describe('request log lines', () => {
  let info: Line[];
  let debug: Line[];
  before(async () => {
    info = await logged('info', probes);
    debug = await logged('debug', probes);
  });
  after(() => undefined);

  test('at info: API requests are logged, probes and scrapes are not', () => {
    assert.equal(requestLines(info, '/v1/runs').length, 2, 'incoming + completed for GET /v1/runs');
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      assert.equal(info.filter((l) => l.req?.url === path).length, 0, `${path} is not logged at info`);
    }
  });

  test('at debug: probes and scrapes are logged, at debug level (20)', () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const lines = requestLines(debug, path);
      assert.equal(lines.length, 2, `${path}: incoming + completed`);
      assert.ok(lines.every((l) => l.level === 20), `${path} at debug: ${JSON.stringify(lines)}`);
    }
    assert.ok(requestLines(debug, '/v1/runs').every((l) => l.level === 30), 'API requests stay at info');
  });
});
