import { describe, expect, it } from 'vitest';
import { namespaceOf, notReadyError, type ConnectorState } from '../../src/broker/not-ready.js';

const state = (connector: string, status: ConnectorState['status'], listed = 0, prefix = connector): ConnectorState => ({ connector, prefix, status, listed });
const missing = { state: 'not-ready' as const, reason: 'secret "gh-token" (header Authorization of connector "gh") is not set; run: gatehouse secret set gh-token', fix: 'gatehouse secret set gh-token' };

describe('which connector a tool name belongs to', () => {
  it('the longest prefix wins; a prefix-less connector owns no name', () => {
    const states = [state('a', missing), state('ab', { state: 'ready' }, 3, 'a__b'), state('flat', missing, 0, '')];
    expect(namespaceOf(states, 'a__b__x')?.connector).toBe('ab');
    expect(namespaceOf(states, 'a__x')?.connector).toBe('a');
    expect(namespaceOf(states, 'x')).toBeUndefined();
    expect(namespaceOf(states, 'A__x')).toBeUndefined();
  });
});

describe('why a call into a connector that lists no tools fails', () => {
  it('not ready: the reason with its fix, once', () => {
    const e = notReadyError([state('gh', missing)], 'gh__create_issue');
    expect(e).toMatchObject({ code: 'CONNECTOR_NOT_READY', details: { connector: 'gh' } });
    expect(e?.message).toBe(`connector "gh" is not ready: ${missing.reason}`);
    const locked = { state: 'not-ready' as const, reason: 'the OS keychain is locked', fix: 'start or unlock the OS keychain, then: gatehouse secret check' };
    expect(notReadyError([state('gh', locked)], 'gh__x')?.message).toBe('connector "gh" is not ready: the OS keychain is locked; fix: start or unlock the OS keychain, then: gatehouse secret check');
  });

  it.each([
    [{ state: 'starting' as const }, 'it is starting; try again shortly'],
    [{ state: 'failed' as const, reason: 'exited with code 1', retryInMs: 1500 }, 'it failed (exited with code 1); retrying in 2 s'],
    [{ state: 'disabled' as const }, 'it is disabled in the registry (enabled: false)'],
    [{ state: 'stopped' as const }, 'it is stopped'],
  ])('%j', (status, why) => {
    expect(notReadyError([state('gh', status)], 'gh__x')?.message).toBe(`connector "gh" is not ready: ${why}`);
  });

  it('a ready connector, or one that lists tools (the name is just not among them), leaves the name unknown', () => {
    expect(notReadyError([state('gh', { state: 'ready' })], 'gh__x')).toBeUndefined();
    expect(notReadyError([state('gh', { state: 'failed', reason: 'crashed', retryInMs: 100 }, 5)], 'gh__x')).toBeUndefined();
    expect(notReadyError([state('gh', missing)], 'other__x')).toBeUndefined();
  });
});
