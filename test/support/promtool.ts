import { spawnSync } from 'node:child_process';

export const PROMTOOL_AVAILABLE = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

/**
 * The `skip` option of a test that needs promtool: a skip with the reason on
 * a developer machine without it; never in CI (CI=true), where .ci/run
 * installs Prometheus and a missing promtool fails the test instead.
 */
export function promtoolSkip(): string | false {
  if (PROMTOOL_AVAILABLE || process.env.CI) return false;
  return 'promtool is not installed (apt-get install prometheus); CI installs it and never skips this';
}

/** promtool with `args` (and `input` on stdin); fails the calling test with a clear message when promtool is missing. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  if (!PROMTOOL_AVAILABLE) throw new Error('promtool is not installed: .ci/run installs it with apt-get install prometheus');
  const run = spawnSync('promtool', args, { encoding: 'utf8', input });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
