import type { Logger } from '../log.js';
import type { RenderContext } from '../secrets/resolve.js';

/** What the gateway hands a built-in connector. */
export interface BuiltinRuntime {
  /** The gateway's SecretResolver.render: throws SECRET_MISSING naming the fix. */
  render: (template: string, ctx: RenderContext) => Promise<string>;
  logger: Logger;
  connectTimeoutMs: number;
  callTimeoutMs: number;
}

export const USER_AGENT = 'gatehouse-connector (+https://github.com/gatehouse)';
