// Shared plumbing for the benchmarks: a PostgreSQL server to create scratch
// databases on, and a place to write results.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { withDatabase } from '../database/db.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/embedded-postgres.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { freePort } from '../test/support/net.js';
export { freePort };


export interface BenchServer {
  /** The server's admin URL (a database where CREATE DATABASE works). */
  url: string;
  createDatabase(label: string): Promise<{ name: string; url: string; drop(): Promise<void> }>;
  stop(): Promise<void>;
}

/** BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL for the run. */
export async function benchServer(): Promise<BenchServer> {
  let embedded: EmbeddedServer | undefined;
  let dir: string | undefined;
  let url = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!url) {
    dir = await mkdtemp(join(tmpdir(), 'sf-bench-pg-'));
    embedded = await startEmbeddedPostgres({ dir, port: await freePort(), persistent: false });
    url = embedded.url('postgres');
  }
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    async createDatabase(label: string) {
      const name = `sf_bench_${label}_${randomBytes(3).toString('hex')}`;
      await admin(`CREATE DATABASE ${name}`);
      return { name, url: withDatabase(url!, name), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
    },
    async stop() {
      await embedded?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Prints the result as one JSON line and writes bench/results/<name>.json. */
export async function writeResult(name: string, result: object): Promise<void> {
  const dir = resolve(PROJECT_ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const body = { benchmark: name, at: new Date().toISOString(), ...result };
  await writeFile(join(dir, `${name}.json`), JSON.stringify(body, null, 2) + '\n');
  process.stdout.write(JSON.stringify(body) + '\n');
}

export function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    n: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1]!),
    meanMs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** One GET over a kept-alive connection; resolves with the latency in ms. */
export function timedGet(agent: Agent, port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolveGet, reject) => {
    const started = performance.now();
    const req = httpRequest({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
        else resolveGet(performance.now() - started);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The middle sample (upper middle for an even count): robust to one noisy round. */
export function median(samples: number[]): number {
  return [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

export interface Probe {
  /** Stops probing; resolves with the worst and the median latency of each query and how often it ran. */
  stop(): Promise<{ queries: number; worstMs: Record<string, number>; medianMs: Record<string, number> }>;
}

/**
 * A concurrent session that runs `queries` one after the other in a loop
 * (autocommit, `pauseMs` apart) and records each one's latency: how long a
 * reader of the table waits while something else runs. `params()` gives the
 * parameters of each round (e.g. a random id).
 */
export async function startProbe(url: string, queries: Record<string, string>, params: () => unknown[] = () => [], pauseMs = 5): Promise<Probe> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-probe' });
  await client.connect();
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(queries).map((k) => [k, []]));
  let running = true;
  let rounds = 0;
  const loop = (async () => {
    while (running) {
      const values = params();
      for (const [name, sql] of Object.entries(queries)) {
        const started = performance.now();
        await client.query(sql, sql.includes('$1') ? values : []);
        samples[name]!.push(performance.now() - started);
      }
      rounds += 1;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.end();
      const round = (n: number) => Math.round(n * 10) / 10;
      return {
        queries: rounds,
        worstMs: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(Math.max(0, ...v))])),
        medianMs: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length ? round(median(v)) : 0])),
      };
    },
  };
}
