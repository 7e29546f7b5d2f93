import type { SecretStore } from '../../src/secrets/store.js';

/**
 * An in-memory SecretStore for the bench: the OS keychain needs a running
 * D-Bus Secret Service, which bench machines do not have. The resolver,
 * its cache, the header rendering and the redaction are the real ones.
 */
export class MemorySecretStore implements SecretStore {
  readonly description = 'an in-memory bench store';
  private readonly values: Map<string, string>;
  constructor(init: Record<string, string>) {
    this.values = new Map(Object.entries(init));
  }
  async get(name: string): Promise<string | null> {
    return this.values.get(name) ?? null;
  }
  async set(name: string, value: string): Promise<void> {
    this.values.set(name, value);
  }
  async delete(name: string): Promise<boolean> {
    return this.values.delete(name);
  }
  async list(): Promise<string[]> {
    return [...this.values.keys()].sort();
  }
}
