// Every way `sfm` can fail, each carrying its stable exit code. The codes are
// part of the CLI's contract (scripts and CI branch on them), so they live in
// one place and `sfm --help` prints this same table.

export const EXIT = {
  ok: 0,
  /** `runs wait`: the run ended badly (or left the good path) before the target. */
  runEndedBadly: 1,
  /** Unknown command or option, missing or bad value, SFM_URL / SFM_TOKEN missing. */
  usage: 2,
  /** The API answered non-2xx, or could not be reached. */
  api: 3,
  /** `runs wait`: the timeout passed first. */
  timeout: 4,
  /** A local failure: writing --output, or a bug in sfm. */
  local: 5,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  runs wait: the run ended badly (failed, rejected, cancelled, ...) before the target
  2  usage error: unknown command or option, missing or bad value, SFM_URL/SFM_TOKEN not set
  3  API error: the service answered non-2xx (401, 403, 404, 409, ...) or could not be reached
  4  runs wait: timed out
  5  local error: could not write --output, or an unexpected failure in sfm`;

export abstract class CliError extends Error {
  abstract readonly exitCode: number;
}

export class UsageError extends CliError {
  readonly exitCode = EXIT.usage;
}

export class LocalError extends CliError {
  readonly exitCode = EXIT.local;
}

export interface ProblemBody {
  title?: unknown;
  detail?: unknown;
  errors?: unknown;
}

/** A non-2xx answer; the message is the one-line summary plus one line per validation error. */
export class ApiError extends CliError {
  readonly exitCode = EXIT.api;
  constructor(readonly status: number, readonly title: string, readonly detail: string, readonly fieldErrors: Array<{ path: string; message: string }>, readonly body: unknown) {
    super([`${status} ${title}${detail ? `: ${detail}` : ''}`, ...fieldErrors.map((e) => `  ${e.path}: ${e.message}`)].join('\n'));
  }
}

/** Connection refused, DNS failure, TLS failure or the per-request timeout. */
export class UnreachableError extends CliError {
  readonly exitCode = EXIT.api;
  constructor(readonly url: string, readonly code: string) {
    super(`cannot reach the service at ${url}: ${code}`);
  }
}

export class RunEndedError extends CliError {
  readonly exitCode = EXIT.runEndedBadly;
}

export class WaitTimeoutError extends CliError {
  readonly exitCode = EXIT.timeout;
}
