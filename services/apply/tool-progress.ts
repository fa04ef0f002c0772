import { readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { one } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import { databaseSize } from '../../database/sql/progress.js';

/** How far a running pg_dump / pg_restore is, in bytes of its dump file. */
export interface ToolSample {
  /** pg_dump: bytes written to the file so far; pg_restore: the furthest byte of the file it has read. */
  doneBytes: number;
  /** Since the tool was started. */
  elapsedSeconds: number;
}

export const SAMPLE_EVERY_MS = 500;

export interface Sampler {
  /** Stops sampling and waits for a sample in flight, so nothing is reported after the tool ended. */
  stop(): Promise<void>;
}

/**
 * Calls `read` every `intervalMs` until stopped and hands each number it
 * returns (null: nothing to report this time) to `onSample`. A failing read or
 * callback only skips that sample: progress must never fail the backup.
 */
function sampleEvery(read: () => Promise<number | null>, onSample: (sample: ToolSample) => void, intervalMs: number): Sampler {
  const started = performance.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const tick = () => {
    inFlight = read()
      .then((bytes) => {
        if (!stopped && bytes !== null) onSample({ doneBytes: bytes, elapsedSeconds: (performance.now() - started) / 1000 });
      })
      .catch(() => undefined)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}

/** The size of the file pg_dump writes, polled while it runs. */
export function sampleFileGrowth(file: string, onSample: (sample: ToolSample) => void, intervalMs = SAMPLE_EVERY_MS): Sampler {
  return sampleEvery(async () => (await stat(file)).size, onSample, intervalMs);
}

/**
 * How far process `pid` has read `file`: the offset of its descriptor on the
 * file, from /proc/<pid>/fdinfo (Linux; elsewhere nothing is reported). The
 * furthest offset seen is kept, so a seek back to the table of contents does
 * not move the progress backwards.
 */
export function sampleReadPosition(pid: () => number | undefined, file: string, onSample: (sample: ToolSample) => void, intervalMs = SAMPLE_EVERY_MS): Sampler {
  if (process.platform !== 'linux') return { stop: async () => undefined };
  let real: string | null = null;
  let furthest = 0;
  return sampleEvery(async () => {
    const p = pid();
    if (p === undefined) return null;
    real ??= await realpath(file);
    for (const fd of await readdir(`/proc/${p}/fd`)) {
      if ((await readlink(`/proc/${p}/fd/${fd}`).catch(() => null)) !== real) continue;
      const pos = /^pos:\s*(\d+)/m.exec(await readFile(`/proc/${p}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (pos === undefined) return null;
      furthest = Math.max(furthest, Number(pos));
      return furthest;
    }
    return null;
  }, onSample, intervalMs);
}

/**
 * pg_database_size of the target, read on a short session of its own before
 * the dump: the base of the dump's expected size. Null (and a log line) when
 * it cannot be read; the backup goes on without a total.
 */
export async function readDatabaseSize(targetUrl: string, applicationName: string | undefined, log: (line: string) => void): Promise<number | null> {
  const client = new pg.Client({ connectionString: targetUrl, application_name: applicationName ?? 'starforge-backup', statement_timeout: 30_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await one<{ bytes: number }>(client, databaseSize())).bytes;
  } catch (err) {
    log(`cannot read the database size for the backup's progress: ${describeConnectionError(err)}`);
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}
