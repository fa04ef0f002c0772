import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import closeWithGrace from 'close-with-grace';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { scrubSecrets } from '../database/pg-errors.js';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type AppConfig } from './config/index.js';
import { loadOrCreateDemoTokens } from './demo-tokens.js';
import { EmbeddedUnavailableError, startEmbeddedPostgres, type EmbeddedServer } from './embedded-postgres.js';

function say(line: string): void {
  process.stderr.write(line + '\n');
}

/** With no DATABASE_URL: an embedded PostgreSQL holding the control database and one demo target per environment. */
async function useEmbedded(config: AppConfig): Promise<{ embedded: EmbeddedServer; demoTokensFile: string | null }> {
  await mkdir(config.dataDir, { recursive: true });
  say(`No DATABASE_URL: starting embedded PostgreSQL on 127.0.0.1:${config.embeddedPgPort} (data in ${join(config.dataDir, 'pg')})`);
  const embedded = await startEmbeddedPostgres({ dir: config.dataDir, port: config.embeddedPgPort, persistent: true });
  started = embedded;
  await embedded.createDatabase('starforge_control');
  config.databaseUrl = embedded.url('starforge_control');
  for (const name of Object.keys(config.environments)) {
    if (config.targetUrls[name]) continue;
    await embedded.createDatabase(`starforge_${name}`);
    config.targetUrls[name] = embedded.url(`starforge_${name}`);
  }
  config.etlWorker ??= true;
  let demoTokensFile: string | null = null;
  if (config.authTokens.length === 0) {
    const demo = await loadOrCreateDemoTokens(config.dataDir);
    config.authTokens = demo.tokens;
    demoTokensFile = demo.file;
  }
  return { embedded, demoTokensFile };
}

/** The embedded server once it runs: stopped last on shutdown, and on a failed start-up. */
let started: EmbeddedServer | undefined;

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = await loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      say(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }

  let embedded: EmbeddedServer | undefined;
  let demoTokensFile: string | null = null;
  if (!config.databaseUrl) {
    try {
      ({ embedded, demoTokensFile } = await useEmbedded(config));
    } catch (err) {
      if (err instanceof EmbeddedUnavailableError) {
        say(`Configuration error: DATABASE_URL is not set, and ${err.message}`);
        process.exit(2);
      }
      throw err;
    }
  }

  await migrateControlDatabase(config.databaseUrl!, { info: (msg) => say(msg) });
  const app = await buildApp(config);
  // In this order: no new requests (in-flight ones finish), then background
  // work (scheduler, applies, ETL, notifier) and the pools, and only then the
  // embedded PostgreSQL they all use. It runs in its own process group, so a
  // Ctrl-C in the terminal reaches only us.
  app.server.once('close', () => app.log.info('HTTP server closed'));
  closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
    if (embedded) {
      await embedded.stop();
      app.log.info('embedded PostgreSQL stopped');
    }
  });

  if (config.authTokens.length === 0) app.log.warn('no AUTH_TOKENS or AUTH_TOKENS_FILE: every /v1 request will get 401');
  await app.listen({ port: config.port, host: config.host });

  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  say(`StarForge Migration Service listening on ${base}`);
  say(`  Console:    ${base}/console/`);
  say(`  API docs:   ${base}/docs   (OpenAPI JSON at ${base}/docs/json)`);
  if (demoTokensFile) say(`  Demo tokens (one per role, embedded demo only): ${demoTokensFile}`);
}

main().catch(async (err) => {
  // The message only: a stack says nothing to an operator, and a start-up error
  // must not carry more than the scrubbed reason.
  say(`Start-up failed: ${scrubSecrets(err instanceof Error ? err.message : String(err), [])}`);
  await started?.stop().catch(() => undefined);
  process.exit(1);
});
