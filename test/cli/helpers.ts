// Runs the built `sfm` as a child process, the way a user or CI does, against
// a test app listening on a real port. Every output is checked for tokens.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../database/paths.js';
import { tokenOf, type Subject, type TestApp } from '../support/app.js';

export const SFM = join(PROJECT_ROOT, 'dist/src/cli/sfm.js');
export const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SfmOptions {
  /** Whose token SFM_TOKEN carries; omit to set SFM_TOKEN yourself through env. */
  as?: Subject;
  /** Extra (or, with undefined, removed) environment variables. */
  env?: Record<string, string | undefined>;
  /** Sees stderr as it arrives (all of it so far), e.g. to react to a progress line. */
  onStderr?: (soFar: string) => void;
}

export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

/** Runs sfm; asserts that no test token (nor one given in env) leaks into its output. */
export function sfm(url: string | undefined, args: string[], opts: SfmOptions = {}): Promise<Result> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  if (url) env.SFM_URL = url;
  if (opts.as) env.SFM_TOKEN = tokenOf(opts.as);
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SFM, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const all = stdout + stderr;
      assert.ok(!all.includes('test-token-'), `a token leaked into the output of sfm ${args.join(' ')}:\n${all}`);
      if (env.SFM_TOKEN) assert.ok(!all.includes(env.SFM_TOKEN), `SFM_TOKEN leaked into the output of sfm ${args.join(' ')}`);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Asserts the exit code, showing what sfm printed when it differs. */
export function exits(res: Result, code: number, what: string): void {
  assert.equal(res.code, code, `${what}: exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
}
