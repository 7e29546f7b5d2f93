import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { isSet, missingSecrets, notSetReason } from '../../src/secrets/presence.js';

const store = (values: Record<string, string>) => ({
  get: async (name: string) => values[name] ?? null,
});

describe('one secret-presence check', () => {
  it('an empty value counts as not set (an empty credential is never handed out)', () => {
    expect(isSet('')).toBe(false);
    expect(isSet(null)).toBe(false);
    expect(isSet('x')).toBe(true);
  });

  it('names the missing secrets in order, once each, never a value', async () => {
    const missing = await missingSecrets(store({ a: 'VALUE-A', b: '' }), ['c', 'a', 'b', 'c']);
    expect(missing).toEqual(['c', 'b']);
    expect(JSON.stringify(missing)).not.toContain('VALUE-A');
  });

  it('an unreachable store is an error, not "missing"', async () => {
    const down = { get: async () => Promise.reject(new GatehouseError('KEYCHAIN_UNAVAILABLE', 'locked')) };
    await expect(missingSecrets(down, ['a'])).rejects.toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
  });

  it('the reason and the fix name each secret and its set command', () => {
    expect(notSetReason(['gh-token'])).toEqual({ reason: 'secret not set: gh-token', fix: 'gatehouse secret set gh-token' });
    expect(notSetReason(['a', 'b'])).toEqual({ reason: 'secrets not set: a, b', fix: 'gatehouse secret set a; gatehouse secret set b' });
  });
});
