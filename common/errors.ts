/** One error hierarchy with stable codes; common/http.ts maps them to HTTP responses. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string, details?: unknown): AppError =>
  new AppError(400, code, message, details);
export const unauthorized = (message = 'a valid API key is required'): AppError =>
  new AppError(401, 'unauthorized', message);
export const notFound = (what: string): AppError =>
  new AppError(404, 'not_found', `${what} not found`);
export const conflict = (code: string, message: string, details?: unknown): AppError =>
  new AppError(409, code, message, details);
export const unprocessable = (code: string, message: string, details?: unknown): AppError =>
  new AppError(422, code, message, details);
export const unavailable = (message: string, retryAfterSeconds: number): AppError =>
  new AppError(503, 'service_unavailable', message, undefined, {
    'Retry-After': String(retryAfterSeconds),
  });
