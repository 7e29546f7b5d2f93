/**
 * The one client of the control socket (`<state>/run/control.sock`): the admin
 * API of the gateway that owns a state directory. The CLI and `gatehouse run`
 * (attaching to a running `gatehouse serve`) both talk to it through here.
 */
import type { Agent } from 'undici';
import { undici } from '../undici.js';
import { ERROR_TABLE, GatehouseError, type ErrorCode } from '../errors.js';
import { controlSocketPath, socketAlive } from './control.js';

type Method = 'GET' | 'POST' | 'DELETE';

/** True when a gateway listens on the state directory's control socket. */
export function gatewayRunning(stateDir: string): Promise<boolean> {
  return socketAlive(controlSocketPath(stateDir));
}

/** The gateway's error code carried over, when it is one of ours (exit codes follow ERROR_TABLE). */
function errorCodeOf(code: unknown): ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_TABLE, code) ? (code as ErrorCode) : 'INTERNAL';
}

/** One connection pool to the control socket; `close()` it when done. */
export class ControlClient {
  readonly #dispatcher: Agent;

  constructor(readonly stateDir: string) {
    this.#dispatcher = new (undici().Agent)({ connect: { socketPath: controlSocketPath(stateDir), timeout: 2000 } });
  }

  #unavailable(e: unknown): GatehouseError {
    const code = (e as { code?: string }).code ?? '';
    return new GatehouseError(
      'GATEWAY_UNAVAILABLE',
      `no gateway is running for state directory ${this.stateDir} (${code || (e as Error).message}); start one with: gatehouse serve${this.stateDir ? ` --state ${this.stateDir}` : ''}`,
    );
  }

  /** Calls /admin/v1`path`; returns the parsed JSON body. An error answer throws its GatehouseError code and message. */
  async call(method: Method, path: string, body?: unknown): Promise<unknown> {
    let res;
    try {
      res = await undici().request(`http://localhost/admin/v1${path}`, {
        method,
        dispatcher: this.#dispatcher,
        headers: { 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      throw this.#unavailable(e);
    }
    const text = await res.body.text().catch((e: unknown) => {
      throw this.#unavailable(e);
    });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new GatehouseError('GATEWAY_UNAVAILABLE', `the gateway answered ${res.statusCode} with a body that is not JSON`);
    }
    if (res.statusCode >= 400) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new GatehouseError(errorCodeOf(err?.code), typeof err?.message === 'string' ? err.message : `the gateway answered ${res.statusCode}`);
    }
    return json;
  }

  /** Holds a request open (a lease the gateway watches); the returned function ends it. */
  async hold(path: string): Promise<() => void> {
    const lease = new AbortController();
    let held;
    try {
      held = await undici().request(`http://localhost/admin/v1${path}`, { dispatcher: this.#dispatcher, signal: lease.signal });
    } catch (e) {
      throw this.#unavailable(e);
    }
    held.body.on('error', () => undefined);
    held.body.resume();
    return () => lease.abort();
  }

  async close(): Promise<void> {
    await this.#dispatcher.destroy().catch(() => undefined);
  }
}

/** One admin API call on a fresh connection. */
export async function adminRequest(stateDir: string, method: Method, path: string, body?: unknown): Promise<unknown> {
  const client = new ControlClient(stateDir);
  try {
    return await client.call(method, path, body);
  } finally {
    await client.close();
  }
}
