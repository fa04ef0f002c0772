/** A configuration problem; `key` names the environment variable or config path at fault. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`${key}: ${detail}`);
    this.name = 'ConfigError';
  }
}
