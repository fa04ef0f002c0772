// Domain errors that carry the HTTP-independent facts a caller needs: a status
// class, a stable problem slug and a message that says what to do next.
export class ServiceError extends Error {
  constructor(
    readonly statusCode: number,
    readonly problem: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export const badRequest = (message: string, extra?: Record<string, unknown>) => new ServiceError(400, 'bad-request', message, extra);
export const forbidden = (message: string, extra?: Record<string, unknown>) => new ServiceError(403, 'forbidden', message, extra);
export const notFound = (message: string, extra?: Record<string, unknown>) => new ServiceError(404, 'not-found', message, extra);
export const conflict = (message: string, extra?: Record<string, unknown>) => new ServiceError(409, 'conflict', message, extra);
export const unprocessable = (message: string, extra?: Record<string, unknown>) => new ServiceError(422, 'unprocessable', message, extra);
export const unavailable = (message: string, extra?: Record<string, unknown>) => new ServiceError(503, 'unavailable', message, extra);
