// A service process started from a directory other than the checkout (the
// runtime layout), optionally as another user, and the HTTP calls the image
// tests make against it.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServiceProcess {
  child: ChildProcess;
  base: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function startService(appDir: string, env: NodeJS.ProcessEnv, port: number, prefix: string[] = []): ServiceProcess {
  const [command, ...args] = [...prefix, process.execPath, 'dist/src/server.js'];
  const child = spawn(command!, args, { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** An environment without anything of the test runner's that would change what the service does. */
export function serviceEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', LOG_LEVEL: 'warn' };
  return { ...env, ...extra };
}

export async function waitForHealth(service: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (service.child.exitCode !== null) throw new Error(`the service exited (${service.child.exitCode}):\n${service.output()}`);
    if (Date.now() - started > timeoutMs) throw new Error(`no /healthz within ${timeoutMs} ms:\n${service.output()}`);
    const ok = await fetch(`${service.base}/healthz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function call(service: ServiceProcess, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${service.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed };
}

/** Polls the run until its status is one of `statuses` (or a terminal failure), within `timeoutMs`. */
export async function waitForStatus(service: ServiceProcess, id: string, token: string, statuses: string[], timeoutMs = 120_000): Promise<any> {
  const started = Date.now();
  const failed = ['preflight_failed', 'failed', 'verification_failed', 'degraded', 'interrupted', 'cancelled', 'rejected'];
  for (;;) {
    const run = (await call(service, 'GET', `/v1/runs/${id}`, token)).body;
    if (statuses.includes(run.status)) return run;
    if (failed.includes(run.status)) {
      const logs = (await call(service, 'GET', `/v1/runs/${id}/logs`, token)).body;
      throw new Error(`run ${id} is ${run.status}: ${JSON.stringify(run.error)}\n${logs}\n${service.output()}`);
    }
    if (Date.now() - started > timeoutMs) throw new Error(`run ${id} still ${run.status} after ${timeoutMs} ms\n${service.output()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
