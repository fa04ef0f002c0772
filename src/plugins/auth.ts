import crypto, { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Role, TokenEntry } from '../config/index.js';
import type { Principal } from '../../services/principal.js';
import { sendProblem } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** 'public' skips auth; a role list restricts the route (admin passes every check); absent = any authenticated caller. */
    auth?: 'public' | Role[];
  }
}

const EMPTY = Buffer.alloc(32);
const BEARER = /^Bearer\s+(\S+)\s*$/i;

// Every authenticated request hashes its token: the one-shot crypto.hash
// (Node >= 20.12) spares it a Hash object, about half the cost of the lookup.
const sha256: (value: string) => Buffer = typeof crypto.hash === 'function'
  ? (value) => crypto.hash('sha256', value, 'buffer')
  : (value) => createHash('sha256').update(value).digest();

/** Finds the caller for a bearer token, comparing digests in constant time against every entry. */
export function authenticate(tokens: TokenEntry[], header: string | undefined): Principal | null {
  const match = header === undefined ? null : BEARER.exec(header);
  const digest = match ? sha256(match[1]!) : EMPTY;
  let found: TokenEntry | null = null;
  for (const entry of tokens) {
    // No early exit: the time taken does not depend on which entry matched.
    if (timingSafeEqual(digest, entry.sha256) && match) found = entry;
  }
  return found ? { subject: found.subject, roles: found.roles } : null;
}

function routeAuth(request: FastifyRequest): 'public' | Role[] | undefined {
  const configured = request.routeOptions.config?.auth;
  if (configured !== undefined) return configured;
  // Unknown routes under /v1 still need a token: a 404 must not reveal the API to strangers.
  return request.url.startsWith('/v1') ? undefined : 'public';
}

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { tokens: TokenEntry[] }) => {
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (request, reply) => {
      const auth = routeAuth(request);
      if (auth === 'public') return;
      const principal = authenticate(opts.tokens, request.headers.authorization);
      if (!principal) {
        reply.header('www-authenticate', 'Bearer realm="starforge"');
        return sendProblem(reply, 401, 'A valid bearer token is required (Authorization: Bearer <token>).');
      }
      request.principal = principal;
      if (Array.isArray(auth) && !principal.roles.includes('admin') && !auth.some((role) => principal.roles.includes(role))) {
        return sendProblem(reply, 403, `This needs one of the roles: ${auth.join(', ')}; ${principal.subject} has ${principal.roles.join(', ')}.`);
      }
    });
  },
  { name: 'auth', dependencies: ['errors'] },
);
