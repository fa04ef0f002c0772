// `npm test`: runs every compiled test file with node's test runner against
// TEST_DATABASE_URL, or, when it is unset, one embedded PostgreSQL started for
// the whole run (each test file still creates and drops its own databases).
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { listDataFiles, newDataFiles } from './checkout-guard.js';
import { freePort } from './net.js';

const testRoot = fileURLToPath(new URL('..', import.meta.url));

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(path)));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}


// Files named *.slow.test.js (minutes of kill -9 loops and load) stay out of
// `npm test`; `--slow` runs them instead (`npm run test:resilience`).
const SLOW = '.slow.test.js';

async function main(): Promise<number> {
  const slow = process.argv.includes('--slow');
  const filter = process.argv.slice(2).filter((arg) => arg !== '--slow');
  let files = (await testFiles(testRoot)).filter((f) => f.endsWith(SLOW) === slow);
  if (filter.length) files = files.filter((f) => filter.some((pattern) => relative(testRoot, f).includes(pattern)));
  // `node --test` with no file would go looking for tests on its own.
  if (files.length === 0) {
    process.stderr.write(`no test file matches ${filter.join(' ') || '(no filter)'}${slow ? ' among the slow ones' : ' (*.slow.test files run only with --slow)'}\n`);
    return 1;
  }
  const env = { ...process.env };
  const checkoutData = join(PROJECT_ROOT, '.data');
  const dataBefore = await listDataFiles(checkoutData);
  let embedded: EmbeddedServer | undefined;
  let dir: string | undefined;
  if (!env.TEST_DATABASE_URL) {
    dir = await mkdtemp(join(tmpdir(), 'starforge-test-pg-'));
    const port = await freePort();
    process.stderr.write(`TEST_DATABASE_URL not set: starting embedded PostgreSQL on 127.0.0.1:${port}\n`);
    embedded = await startEmbeddedPostgres({ dir, port, persistent: false });
    env.TEST_DATABASE_URL = embedded.url('postgres');
  } else {
    process.stderr.write('Using TEST_DATABASE_URL for tests\n');
  }
  try {
    // Slow files measure timings and run several service processes each: one at a time.
    const concurrency = process.env.TEST_CONCURRENCY ?? (slow ? '1' : '3');
    // Not --test-force-exit: it exits a file's process before the process has written out the results of its last
    // tests, and the run then passes without them (seen under load: 2 and 8 of lint.test's tests gone, green).
    // A file that leaves a handle open (a socket, a timer) after its tests instead runs into this limit, and fails.
    const limitMs = Number(process.env.TEST_RUN_TIMEOUT_MS ?? (slow ? 50 : 30) * 60_000);
    const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { env, stdio: 'inherit', detached: true });
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      process.stderr.write(`\nThe test run did not end within ${Math.round(limitMs / 1000)} s (TEST_RUN_TIMEOUT_MS): a test file hangs or leaves a handle open. Stopping it.\n`);
      // The runner and the file processes it started: one process group.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, limitMs);
    // Its own process group, so Ctrl-C (or CI's SIGTERM) is passed on to it.
    const forward = (signal: NodeJS.Signals) => () => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const code = await new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
    clearTimeout(watchdog);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (timedOut) return 1;
    const left = await newDataFiles(checkoutData, dataBefore);
    if (left.length) {
      process.stderr.write(`\nThe test run wrote into the checkout's .data/ (tests must use temporary directories):\n${left.map((f) => `  .data/${f}`).join('\n')}\n`);
      return code || 1;
    }
    return code;
  } finally {
    await embedded?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`test run failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
