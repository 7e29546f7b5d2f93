import { adminRequest } from '../../src/server/control-client.js';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT, type RawResponse, type TestGateway } from '../helpers/gateway.js';

/** The distribution's Chromium (scripts/test-deps.sh installs it); nothing downloads a browser. */
export const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of each page, for people (git-ignored). */
export const SHOTS = join(ROOT, 'artifacts', 'console');
export const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/** The browser tests' policy: fx__echo waits for a human (grants up to 1h / 5 uses), short naps are denied, the rest allowed. */
export const BROWSER_POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', message: 'Echo needs a human.', ask: { timeout: '2m', grant: { ttl: '1h', maxUses: 5 } } },
    { id: 'no-short-naps', match: { tool: 'fx__slow', args: { ms: { max: 50 } } }, effect: 'deny', message: 'too short' },
    { id: 'rest', match: { tool: '*' }, effect: 'allow' },
  ],
};

/** Asks the gateway (control socket) for a one-time login URL, as `gatehouse console` does. */
export async function loginUrl(t: TestGateway): Promise<{ url: string; secret: string }> {
  const { url } = (await adminRequest(t.dirs.state, 'POST', '/console/login')) as { url: string };
  const secret = /#login=([A-Za-z0-9_-]+)$/.exec(url)?.[1];
  if (secret === undefined) throw new Error(`no secret in ${url}`);
  return { url, secret };
}

export function exchange(t: TestGateway, secret: string): Promise<RawResponse> {
  return t.raw({ method: 'POST', path: '/console/api/session', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret }) });
}

export interface ConsoleLogin {
  /** `gatehouse_console=…`, as a Cookie header. */
  cookie: string;
  /** The session token (only the login answer carries it). */
  csrf: string;
  session: string;
  /** Both, as the page sends them with every request. */
  headers: { cookie: string; 'x-gatehouse-csrf': string };
}

/** A logged-in console session: its cookie header and session token. */
export async function consoleSession(t: TestGateway): Promise<ConsoleLogin> {
  const res = await exchange(t, (await loginUrl(t)).secret);
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  const set = String(res.headers['set-cookie']?.[0] ?? '');
  const body = res.json() as { csrf: string; session: string };
  const cookie = set.split(';')[0] as string;
  return { cookie, csrf: body.csrf, session: body.session, headers: { cookie, 'x-gatehouse-csrf': body.csrf } };
}
