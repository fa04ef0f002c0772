import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/** Probes and scrapes: a load balancer, the image's HEALTHCHECK and Prometheus call these every few seconds. */
export const PROBE_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

function isProbe(request: FastifyRequest): boolean {
  return PROBE_ROUTES.has(request.routeOptions?.url ?? request.url.split('?')[0]!);
}

/**
 * Fastify's request log lines ("incoming request", "request completed") at
 * debug instead of info for probes and scrapes, which would otherwise be most
 * of the log. A probe that errors is still logged at error.
 */
export class ProbeQuietLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (!isProbe(request)) return super.incomingRequest(request, reply);
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error || !isProbe(request)) return super.requestCompleted(error, request, reply);
    if (this.isLogDisabled(request)) return;
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
