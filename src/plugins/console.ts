import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic, { type SetHeadersResponse } from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PROJECT_ROOT } from '../../database/paths.js';
import { sendProblem } from './errors.js';

/** Where `npm run build` puts the console (console/vite.config.ts). */
export const CONSOLE_DIR = join(PROJECT_ROOT, 'dist', 'console');

// The console loads only its own hashed files and talks only to this origin.
// No inline script or style anywhere, no framing, and Trusted Types with no
// policy: a string can never reach an HTML sink such as innerHTML.
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

function secure(reply: FastifyReply): void {
  reply.headers(SECURITY_HEADERS);
}

/**
 * The web console: the built static files under /console/ (index.html and
 * hashed assets), `/` redirecting there. Every response in here, errors and
 * redirects included, carries the console's security headers. Encapsulated, so
 * its hooks touch no API route. The files are public (auth only guards /v1):
 * the page holds no data; the API behind it needs the token.
 */
export async function consolePlugin(app: FastifyInstance, opts: { root?: string } = {}): Promise<void> {
  const root = opts.root ?? CONSOLE_DIR;
  app.addHook('onRequest', (_request, reply, done) => {
    secure(reply);
    done();
  });

  app.get('/', { config: { auth: 'public' }, schema: { hide: true } }, (_request, reply) => reply.redirect('/console/', 302));
  app.get('/console', { config: { auth: 'public' }, schema: { hide: true } }, (_request, reply) => reply.redirect('/console/', 301));

  await app.register(async (scope) => {
    scope.setNotFoundHandler((request, reply) => sendProblem(reply, 404, `No console page or file ${request.url.split('?')[0]}`));
    if (!existsSync(join(root, 'index.html'))) {
      // A checkout that was never built: say how to fix it rather than 404.
      scope.get('/*', { config: { auth: 'public' }, schema: { hide: true } }, (_request, reply) =>
        sendProblem(reply, 503, 'The console is not built: run `npm run build` (npm start builds it when missing).'));
      return;
    }
    await scope.register(fastifyStatic, {
      root,
      prefix: '/',
      index: ['index.html'],
      // The .br / .gz siblings written by the build, when the browser accepts them.
      preCompressed: true,
      schemaHide: true,
      wildcard: true,
      dotfiles: 'deny',
      cacheControl: false,
      setHeaders: (res: SetHeadersResponse, path: string) => {
        // Hashed names never change content: cache them for good; the page itself is revalidated.
        // The same URL answers brotli, gzip or plain by Accept-Encoding: caches must key on it.
        res.setHeader('vary', 'accept-encoding');
        res.setHeader('cache-control', path.includes(`${join(root, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  }, { prefix: '/console' });
}
