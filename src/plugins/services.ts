import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { closePool, createPool } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import { createServices, type Services } from '../../services/index.js';
import type { AppConfig } from '../config/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Opens the control pool, builds the services on it, and closes both with the app. */
export const servicesPlugin = fp(
  async (app: FastifyInstance, opts: { config: AppConfig }) => {
    const { config } = opts;
    if (!config.databaseUrl) throw new Error('DATABASE_URL is required by the app (the server starts embedded PostgreSQL when it is unset)');
    const control = createPool(config.databaseUrl, {
      max: 10,
      applicationName: 'starforge-control',
      onError: (err) => app.log.warn({ reason: describeConnectionError(err) }, 'control database connection lost'),
    });
    const services = createServices({ control, config, log: app.log });
    app.decorate('services', services);
    // Background work (resuming orphaned preflights) starts when the server
    // listens, so building the app (tests, the OpenAPI generator) does no I/O.
    app.addHook('onListen', async () => {
      await services.start();
    });
    // Runs once the HTTP server has closed (Fastify closes it before the plugins' onClose hooks).
    app.addHook('onClose', async () => {
      await services.close();
      await closePool(control);
      app.log.info('background work stopped');
    });
  },
  { name: 'services' },
);
