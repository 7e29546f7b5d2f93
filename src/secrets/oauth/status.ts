/**
 * An `oauth:` connector's login state for `gatehouse connector list`,
 * computed offline from the keychain (names and expiry only, never a token).
 */
import type { SecretStore } from '../store.js';
import { loginEntry, loginNote } from './login.js';
import { agentsIn, storeLoginStore } from './store.js';

export interface OAuthListing {
  /** "oauth: expires in 58 min, refreshes itself", "oauth: per agent (2 logged in: a, b)". */
  note: string;
  /** The logins found: the connector's own, and each agent's. */
  loggedIn: boolean;
  agents?: string[];
  /** When not logged in: the command that logs in. */
  fix?: string;
}

/** What of a connector this needs (the registry's http connector fits). */
export interface OAuthConnectorShape {
  name: string;
  oauth?: { per: 'connector' | 'agent' } | undefined;
}

export async function oauthListing(c: OAuthConnectorShape, store: SecretStore, now = Date.now()): Promise<OAuthListing | undefined> {
  if (c.oauth === undefined) return undefined;
  if (c.oauth.per === 'agent') {
    const agents = agentsIn(c.name, await store.list());
    if (agents.length === 0) return { note: 'oauth: per agent, none logged in', loggedIn: false, agents, fix: `gatehouse connector login ${c.name} --for AGENT` };
    const shown = agents.slice(0, 5).join(', ') + (agents.length > 5 ? ', ...' : '');
    return { note: `oauth: per agent (${agents.length} logged in: ${shown})`, loggedIn: true, agents };
  }
  let login;
  try {
    login = await storeLoginStore(store, c.name).read();
  } catch {
    return { note: `oauth: the keychain entry ${loginEntry(c.name)} is not a login`, loggedIn: false, fix: `gatehouse connector login ${c.name}` };
  }
  if (login === null) return { note: 'oauth: not logged in', loggedIn: false, fix: `gatehouse connector login ${c.name}` };
  return { note: loginNote(login, now), loggedIn: true };
}
