import { GatehouseError } from '../errors.js';
import { parseTemplate } from './template.js';
import type { SecretStore } from './store.js';

export interface RenderContext {
  connector: string;
  /** Where the value goes, for messages: "header Authorization", "env GITHUB_TOKEN". */
  where: string;
}

/**
 * Renders `${secret:NAME}` templates at the last moment, in the gateway only.
 * Missing secrets fail closed: SECRET_MISSING naming the fix, never ''.
 */
export interface SecretResolver {
  render(template: string, ctx: RenderContext): Promise<string>;
}

export class StoreResolver implements SecretResolver {
  constructor(private readonly store: SecretStore | undefined) {}

  async render(template: string, ctx: RenderContext): Promise<string> {
    let out = '';
    for (const part of parseTemplate(template)) {
      if ('text' in part) {
        out += part.text;
        continue;
      }
      const value = this.store ? await this.store.get(part.secret) : null;
      if (value === null || value === '') {
        throw new GatehouseError(
          'SECRET_MISSING',
          `secret "${part.secret}" (${ctx.where} of connector "${ctx.connector}") is not set; run: gatehouse secret set ${part.secret}`,
          { details: { secret: part.secret, connector: ctx.connector } },
        );
      }
      out += value;
    }
    return out;
  }
}
