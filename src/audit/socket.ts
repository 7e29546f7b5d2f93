import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { AuditEvent } from './types.js';

/**
 * The append socket: how another local process (the CLI's `secret set`)
 * appends while a gateway holds the writer lock. One JSON request per line,
 * `{"event":{...}}`; one reply per line after the record is durable,
 * `{"ok":true,"seq":N}` or `{"ok":false,"code":...,"message":...}`.
 * The socket is 0600 in the 0700 audit directory: only the gateway's own
 * user can connect, and that user can write the files anyway.
 */
export function socketPath(dir: string): string {
  return join(dir, 'writer.sock');
}

const MAX_REQUEST = 256 * 1024;
const EVENT_NAME = /^[a-z][a-z0-9_./-]{0,63}$/;

export interface SocketServer {
  close(): Promise<void>;
}

export async function serveAppendSocket(path: string, append: (e: AuditEvent) => Promise<{ seq: number }>, logger: Logger): Promise<SocketServer> {
  try {
    unlinkSync(path); // left by a dead writer: we hold the writer lock, so it is not live
  } catch {
    // none
  }
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        conn.end(JSON.stringify({ ok: false, code: 'USAGE', message: 'request too large' }) + '\n');
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void handle(line).then((reply) => conn.write(JSON.stringify(reply) + '\n'));
      }
    });
  });
  const handle = async (line: string): Promise<Record<string, unknown>> => {
    let e: AuditEvent;
    try {
      const req = JSON.parse(line) as { event?: unknown };
      const ev = req.event as AuditEvent | undefined;
      if (ev === null || typeof ev !== 'object' || typeof ev.event !== 'string' || !EVENT_NAME.test(ev.event)) throw new Error('expected {"event":{"event":"name",...}}');
      e = ev;
    } catch (err) {
      return { ok: false, code: 'USAGE', message: errorMessage(err) };
    }
    try {
      const r = await append(e);
      return { ok: true, seq: r.seq };
    } catch (err) {
      return { ok: false, code: err instanceof GatehouseError ? err.code : 'AUDIT_UNAVAILABLE', message: errorMessage(err) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  server.unref();
  logger.debug({ path }, 'audit: append socket listening');
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(path);
        } catch {
          // gone
        }
      }),
  };
}

/** Sends one event over the socket; resolves with its seq once durable. Rejects with the errno on no listener. */
export function sendOverSocket(path: string, event: AuditEvent, timeoutMs = 10_000): Promise<{ seq: number }> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new GatehouseError('AUDIT_UNAVAILABLE', `the gateway did not confirm the audit record within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    conn.on('connect', () => conn.write(JSON.stringify({ event }) + '\n'));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; seq?: number; code?: string; message?: string };
      if (reply.ok && typeof reply.seq === 'number') resolve({ seq: reply.seq });
      else reject(new GatehouseError('AUDIT_UNAVAILABLE', `the gateway refused the audit record: ${reply.message ?? 'unknown error'}`));
    });
  });
}
