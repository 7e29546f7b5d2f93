import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadTokenKeys, mintToken, TokenVerifier, type TokenKeys } from '../../src/server/tokens.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let keys: TokenKeys;
beforeAll(async () => {
  dir = tempDir('gh-verifier-');
  keys = await loadTokenKeys(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.useRealTimers();
});

describe('TokenVerifier', () => {
  it('a_remembered_token_is_still_refused_once_it_expires', async () => {
    const v = new TokenVerifier(keys);
    const start = Date.now();
    const { token } = await mintToken(keys, 'coder', 60_000, start);
    await expect(v.verify(token)).resolves.toMatchObject({ agent: 'coder' });
    await expect(v.verify(token)).resolves.toMatchObject({ agent: 'coder' });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(start + 60_000 + 31_000);
    await expect(v.verify(token)).rejects.toMatchObject({ code: 'AUTH_INVALID', message: expect.stringMatching(/expired/) });
  });

  it('a_failed_token_is_never_remembered', async () => {
    const v = new TokenVerifier(keys);
    const { token } = await mintToken(keys, 'coder', 60_000);
    const forged = `${token.slice(0, -4)}AAAA`;
    await expect(v.verify(forged)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    await expect(v.verify(forged)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    expect(v.size).toBe(0);
  });

  it('memory_is_bounded', async () => {
    const v = new TokenVerifier(keys, 2);
    for (const agent of ['a1', 'a2', 'a3', 'a4']) await v.verify((await mintToken(keys, agent, 60_000)).token);
    expect(v.size).toBe(2);
  });
});
