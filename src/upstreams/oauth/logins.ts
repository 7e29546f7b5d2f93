/**
 * The logins of one `oauth:` connector in the gateway: one OAuthSession per
 * identity — the connector's own, or, with `per: agent`, one per agent —
 * read from the keychain through the resolver (bound, redacted, watched).
 */
import { GatehouseError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { HttpConnector } from '../../registry/schema.js';
import { loginEntry } from '../../secrets/oauth/login.js';
import { agentsIn, resolverLoginStore } from '../../secrets/oauth/store.js';
import type { SecretResolver } from '../../secrets/resolve.js';
import { OAuthSession } from './session.js';
import type { OAuthFetch } from './http.js';

export class OAuthLogins {
  private readonly sessions = new Map<string, OAuthSession>();

  constructor(
    private readonly c: HttpConnector & { oauth: NonNullable<HttpConnector['oauth']> },
    private readonly secrets: SecretResolver,
    private readonly log: Logger,
    private readonly http?: OAuthFetch,
  ) {}

  get perAgent(): boolean {
    return this.c.oauth.per === 'agent';
  }

  /** The session of the connector's login (agent undefined) or of one agent's. */
  session(agent?: string): OAuthSession {
    const key = agent ?? '';
    let s = this.sessions.get(key);
    if (s === undefined) {
      const template = this.c.oauth.clientSecret;
      s = new OAuthSession({
        connector: this.c.name,
        agent,
        url: this.c.url,
        issuer: this.c.oauth.authorizationServer,
        store: resolverLoginStore(this.secrets, this.c.name, agent),
        clientSecret: async () => (template === undefined ? undefined : this.secrets.render(template, { connector: this.c.name, where: 'oauth.clientSecret' })),
        log: this.log,
        ...(this.http ? { http: this.http } : {}),
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * Whose login lists the tools of a `per: agent` connector: the connector's
   * own when there is one, else the first agent's (calls always go as the
   * calling agent). undefined: the connector's own (per: connector).
   */
  async listingAgent(): Promise<string | undefined> {
    if (!this.perAgent) return undefined;
    const names = (await this.secrets.entryNames?.(this.c.name)) ?? [];
    if (names.includes(loginEntry(this.c.name))) return undefined;
    const first = agentsIn(this.c.name, names)[0];
    if (first !== undefined) return first;
    const fix = `gatehouse connector login ${this.c.name} --for AGENT`;
    throw new GatehouseError('OAUTH_LOGIN_REQUIRED', `connector "${this.c.name}" acts as each agent (oauth.per: agent) and no agent has logged in yet; log in: ${fix}`, { details: { connector: this.c.name, fix } });
  }

  /** The keychain names to watch: the connector's login, and its agents' (a prefix). */
  watchNames(): string[] {
    return [loginEntry(this.c.name), ...(this.perAgent ? [`${loginEntry(this.c.name, '')}*`] : [])];
  }

  /** A keychain entry changed: every session reads its login again. */
  invalidate(): void {
    for (const s of this.sessions.values()) s.invalidate();
  }
}
