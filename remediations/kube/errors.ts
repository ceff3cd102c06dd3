/**
 * Mapping of API-server failures onto nodewarden's error codes, shared by
 * every KubeApi adapter so executors reason about one vocabulary.
 */
import { NodewardenError, errorMessage, type ErrorCode } from '../../core/errors.js';

/** The NodewardenError for an HTTP status from the API server. */
export function errorForStatus(status: number, message: string, cause?: unknown): NodewardenError {
  const [code, retriable] = codeForStatus(status);
  return new NodewardenError(code, message, { retriable, cause });
}

export function codeForStatus(status: number): [ErrorCode, boolean] {
  if (status === 409) return ['CONFLICT', true];
  if (status === 403) return ['FORBIDDEN', false];
  if (status === 401) return ['UNAUTHORIZED', false];
  if (status === 404) return ['NOT_FOUND', false];
  if (status === 400 || status === 422) return ['REQUEST_INVALID', false];
  if (status === 429) return ['RATE_LIMITED', true];
  if (status === 408 || status === 504) return ['TIMEOUT', true];
  if (status >= 500) return ['UNAVAILABLE', true];
  return ['INTERNAL', false];
}

/** Network-level failure (no HTTP status): the server may be fine a moment later. */
export function networkError(err: unknown, what: string): NodewardenError {
  const msg = errorMessage(err);
  const timeout = /timeout|timed out|aborted/i.test(msg) || (err instanceof Error && err.name === 'TimeoutError');
  return new NodewardenError(timeout ? 'TIMEOUT' : 'UNAVAILABLE', `${what}: ${msg}`, { retriable: true, cause: err });
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof NodewardenError && err.code === code;
}

/** Wraps anything thrown into a NodewardenError (INTERNAL when it is not one already). */
export function asNodewardenError(err: unknown): NodewardenError {
  return err instanceof NodewardenError ? err : new NodewardenError('INTERNAL', errorMessage(err), { cause: err });
}
