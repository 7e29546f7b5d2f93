/**
 * Where secret values come from. The OS keychain implementation lives in
 * `keychain.ts`; anything else (a shared secret manager) fits the same shape.
 */
export interface SecretStore {
  /** The value, or null when no such secret is set. Throws GatehouseError('KEYCHAIN_UNAVAILABLE') when the store cannot be reached. */
  get(name: string): Promise<string | null>;
  set(name: string, value: string): Promise<void>;
  /** True when something was deleted. */
  delete(name: string): Promise<boolean>;
  /** Names only, never values. */
  list(): Promise<string[]>;
  /** Human description for messages, e.g. "the OS keychain (Secret Service)". */
  readonly description: string;
}
