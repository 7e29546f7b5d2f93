import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Hono } from 'hono';
import { GatehouseError } from '../errors.js';
import { closeWithConnection } from '../pipelined.js';

export function runDir(stateDir: string): string {
  return join(stateDir, 'run');
}
export function controlSocketPath(stateDir: string): string {
  return join(runDir(stateDir), 'control.sock');
}

/** True when something accepts connections on the unix socket. */
export function socketAlive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

/** Creates `<state>/run` (0700): sockets in it are reachable by this user only. */
export function ensureRunDir(stateDir: string): string {
  const dir = runDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * The local control socket: the admin API for the user who owns the state
 * directory (filesystem permissions are the authentication). Also the lock
 * that keeps two gateways off one state directory.
 */
export async function listenControl(stateDir: string, app: Hono): Promise<{ path: string; close(): Promise<void> }> {
  ensureRunDir(stateDir);
  const path = controlSocketPath(stateDir);
  if (await socketAlive(path)) {
    throw new GatehouseError('GATEWAY_RUNNING', `a gateway is already running with state directory ${stateDir} (control socket ${path}); stop it, or use another --state`);
  }
  try {
    unlinkSync(path);
  } catch {
    // no stale socket
  }
  const server = createAdaptorServer({
    fetch: (req: Request, env: unknown) => {
      // A pipelined request's response closes with the connection (a waiting `approvals` request hears its client left).
      const { incoming, outgoing } = (env ?? {}) as { incoming?: IncomingMessage; outgoing?: ServerResponse };
      if (incoming && outgoing) closeWithConnection(incoming, outgoing);
      return app.fetch(req, env);
    },
  }) as HttpServer;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}
