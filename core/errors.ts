/**
 * Errors carry a stable code, whether retrying can help, and the cause.
 * Poison input (a malformed event, rule, config or request) is its own type:
 * it is reported and set aside, never retried and never fatal to a service.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'RULE_INVALID',
  'EVENT_INVALID',
  'REQUEST_INVALID',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'UNAVAILABLE',
  'TIMEOUT',
  'RATE_LIMITED',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class NodewardenError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  constructor(code: ErrorCode, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NodewardenError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

/** One precise problem in an input: where (file, id, field path) and what. */
export interface InputProblem {
  /** JSON-pointer-like path of the offending field, e.g. `/rules/3/window/for`. */
  path: string;
  message: string;
}

/** Malformed input: never retried; reported with every problem found. */
export class PoisonInputError extends NodewardenError {
  readonly problems: InputProblem[];
  readonly source: string | undefined;
  constructor(code: ErrorCode, source: string | undefined, problems: InputProblem[], cause?: unknown) {
    const where = source ? `${source}: ` : '';
    const detail = problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ');
    super(code, `${where}${detail}`, { retriable: false, cause });
    this.name = 'PoisonInputError';
    this.problems = problems;
    this.source = source;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
