import { adminRequest } from '../../src/server/control-client.js';
import type { RawResponse, TestGateway } from '../helpers/gateway.js';

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

/** A logged-in console session: its cookie header and CSRF token. */
export async function consoleSession(t: TestGateway): Promise<{ cookie: string; csrf: string; session: string }> {
  const res = await exchange(t, (await loginUrl(t)).secret);
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  const set = String(res.headers['set-cookie']?.[0] ?? '');
  const body = res.json() as { csrf: string; session: string };
  return { cookie: set.split(';')[0] as string, csrf: body.csrf, session: body.session };
}
