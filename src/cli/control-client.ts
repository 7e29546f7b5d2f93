import { Agent, request } from 'undici';
import { controlSocketPath } from '../server/control.js';
import { GatehouseError } from '../errors.js';

/** Calls the running gateway's admin API over its control socket. Returns the parsed JSON body. */
export async function adminRequest(stateDir: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const socketPath = controlSocketPath(stateDir);
  const dispatcher = new Agent({ connect: { socketPath, timeout: 2000 } });
  try {
    const res = await request(`http://localhost/admin/v1${path}`, {
      method,
      dispatcher,
      headers: { 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new GatehouseError('GATEWAY_UNAVAILABLE', `the gateway answered ${res.statusCode} with a body that is not JSON`);
    }
    if (res.statusCode >= 400) {
      const err = (json as { error?: { code?: string; message?: string } }).error;
      const code = err?.code === 'NOT_FOUND' ? 'NOT_FOUND' : err?.code === 'USAGE' ? 'USAGE' : 'INTERNAL';
      throw new GatehouseError(code, err?.message ?? `the gateway answered ${res.statusCode}`);
    }
    return json;
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    const code = (e as { code?: string }).code ?? '';
    throw new GatehouseError(
      'GATEWAY_UNAVAILABLE',
      `no gateway is running for state directory ${stateDir} (${code || (e as Error).message}); start one with: gatehouse serve${stateDir ? ` --state ${stateDir}` : ''}`,
    );
  } finally {
    await dispatcher.close();
  }
}
