/**
 * The one answer to "is this secret set?": for readiness (connector list,
 * serve, the gateway's not-ready refusals), `secret check` and the resolver.
 * It reads values only to drop them; it never returns or logs one.
 */
import type { SecretStore } from './store.js';

/** A stored value counts as set only when non-empty: an empty credential is never handed out. */
export function isSet(value: string | null | undefined): value is string {
  return value !== null && value !== undefined && value !== '';
}

/**
 * The names among `names` that are not set, in order, each once. Throws the
 * store's GatehouseError (KEYCHAIN_UNAVAILABLE) when it cannot be asked.
 */
export async function missingSecrets(store: Pick<SecretStore, 'get'>, names: Iterable<string>): Promise<string[]> {
  const missing: string[] = [];
  for (const name of new Set(names)) if (!isSet(await store.get(name))) missing.push(name);
  return missing;
}

/** The command that sets one secret. */
export function setSecretCommand(name: string): string {
  return `gatehouse secret set ${name}`;
}

/** Why a connector needing `missing` is not ready, and the commands that fix it. */
export function notSetReason(missing: readonly string[]): { reason: string; fix: string } {
  return {
    reason: `secret${missing.length > 1 ? 's' : ''} not set: ${missing.join(', ')}`,
    fix: missing.map(setSecretCommand).join('; '),
  };
}
