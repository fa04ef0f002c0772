import { buildApp } from './app.js';
import { loadConfig } from './config/index.js';

/**
 * The OpenAPI document built from the route schemas, as committed in
 * openapi/openapi.json. Built without touching any database.
 */
export async function generateOpenApiDocument(): Promise<string> {
  const config = await loadConfig({ DATABASE_URL: 'postgres://openapi@127.0.0.1:1/openapi', LOG_LEVEL: 'silent' });
  const app = await buildApp(config, { logger: false });
  try {
    return JSON.stringify(app.swagger(), null, 2) + '\n';
  } finally {
    await app.close();
  }
}
