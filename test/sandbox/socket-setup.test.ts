/**
 * Set-up of the local sockets whose file modes are the only authentication:
 * the control socket (the admin) and each sandbox session socket (the agent).
 * In process, no gateway: fast enough for mutation testing. The same modes on
 * a running gateway, and other users failing to connect, are in
 * test/sandbox/socket-modes.int.test.ts.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { silentLogger } from '../../src/log.js';
import { SandboxSessions } from '../../src/sandbox/sandbox-sessions.js';
import { controlSocketPath, ensureRunDir, listenControl, runDir, socketAlive } from '../../src/server/control.js';
import { SessionManager } from '../../src/server/mcp-sessions.js';
import { initializeBody, MCP_HEADERS } from '../helpers/gateway.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { tempDir } from '../helpers/tmp.js';

const mode = (p: string) => statSync(p).mode & 0o777;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function stateDir(name = 'gh-sock-'): string {
  const d = tempDir(name);
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('the run directory', () => {
  it('is created 0700 under the state directory', () => {
    const s = stateDir();
    expect(ensureRunDir(s)).toBe(join(s, 'run'));
    expect(runDir(s)).toBe(join(s, 'run'));
    expect(mode(join(s, 'run'))).toBe(0o700);
  });

  it('an existing run directory left world-writable (0777) is tightened back to 0700', () => {
    const s = stateDir();
    mkdirSync(join(s, 'run'));
    chmodSync(join(s, 'run'), 0o777);
    ensureRunDir(s);
    expect(mode(join(s, 'run'))).toBe(0o700);
  });
});

describe('the control socket (the local admin API)', () => {
  const app = new Hono().get('/ping', (c) => c.text('pong'));

  it('is <state>/run/control.sock, mode 0600 in a 0700 directory, and answers', async () => {
    const s = stateDir();
    const ctl = await listenControl(s, app);
    cleanup.push(() => ctl.close());
    expect(ctl.path).toBe(controlSocketPath(s));
    expect(ctl.path).toBe(join(s, 'run', 'control.sock'));
    expect(mode(ctl.path)).toBe(0o600);
    expect(mode(dirname(ctl.path))).toBe(0o700);
    expect(await socketAlive(ctl.path)).toBe(true);
  });

  it('a second gateway on the same state directory is refused while the first runs (GATEWAY_RUNNING)', async () => {
    const s = stateDir();
    const ctl = await listenControl(s, app);
    cleanup.push(() => ctl.close());
    await expect(listenControl(s, app)).rejects.toMatchObject({ code: 'GATEWAY_RUNNING', message: expect.stringContaining('already running') });
    expect(await socketAlive(ctl.path)).toBe(true);
  });

  it('a stale socket file (nobody listening) is replaced, and close removes the socket', async () => {
    const s = stateDir();
    ensureRunDir(s);
    writeFileSync(controlSocketPath(s), 'stale');
    expect(await socketAlive(controlSocketPath(s))).toBe(false);
    const ctl = await listenControl(s, app);
    expect(await socketAlive(ctl.path)).toBe(true);
    expect(mode(ctl.path)).toBe(0o600);
    await ctl.close();
    expect(existsSync(ctl.path)).toBe(false);
    expect(await socketAlive(ctl.path)).toBe(false);
  });

  it('a control socket that cannot be opened (path too long) is an error, not a hang', async () => {
    const s = join(stateDir(), 'x'.repeat(100));
    mkdirSync(s);
    await expect(listenControl(s, app)).rejects.toThrow();
  });

  it('socketAlive: false for a missing path, true for a listening socket', async () => {
    const s = stateDir();
    expect(await socketAlive(join(s, 'nothing.sock'))).toBe(false);
    const path = join(s, 'busy.sock');
    const srv = createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(path, () => r()));
    cleanup.push(() => new Promise<void>((r) => srv.close(() => r())));
    expect(await socketAlive(path, 2000)).toBe(true);
  });
});

describe('sandbox session sockets (no token: the socket is the agent)', () => {
  function sandboxes(s: string) {
    const records: AuditEvent[] = [];
    const audit: AuditSink = { append: async (e) => void records.push(e), assertWritable: () => undefined, close: async () => undefined };
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger });
    const boxes = new SandboxSessions({ stateDir: s, sessions, audit, logger: silentLogger });
    cleanup.push(async () => {
      await boxes.closeAll();
      await sessions.closeAll();
    });
    return { boxes, records, sessions };
  }

  /** POSTs an MCP initialize on a unix socket; resolves with the status and session id. */
  function initializeOn(socketPath: string, port: number): Promise<{ status: number; sid: string }> {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify(initializeBody());
      const req = request({ socketPath, path: '/mcp', method: 'POST', headers: { ...MCP_HEADERS, host: `127.0.0.1:${port}`, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sid: String(res.headers['mcp-session-id'] ?? '') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('whoever connects on the socket is that sandbox\'s agent: the session is bound to (agent, via sandbox, its id)', async () => {
    const { boxes, sessions } = sandboxes(stateDir());
    const a = await boxes.create('alice', 18999);
    const { status, sid } = await initializeOn(a.socketPath, 18999);
    expect(status).toBe(200);
    expect(sessions.get(sid, { agent: 'alice', via: 'sandbox', sandbox: a.id })).toBeDefined();
    expect(sessions.get(sid, { agent: 'alice', via: 'token' })).toBeUndefined();
    expect((await initializeOn(a.socketPath, 18998)).status).toBe(403);
  });

  it('the body cap given to the sandbox sessions applies on their sockets', async () => {
    const s = stateDir();
    const audit: AuditSink = { append: async () => undefined, assertWritable: () => undefined, close: async () => undefined };
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger });
    const boxes = new SandboxSessions({ stateDir: s, sessions, audit, logger: silentLogger, maxBodyBytes: 50 });
    cleanup.push(async () => {
      await boxes.closeAll();
      await sessions.closeAll();
    });
    const a = await boxes.create('alice', 18999);
    expect((await initializeOn(a.socketPath, 18999)).status).toBe(413);
  });

  it('the audit log refuses the sandbox.opened record: the sandbox is not opened (AUDIT_UNAVAILABLE), its socket and directory are gone, and the failure is logged', async () => {
    const s = stateDir();
    const logged: Array<{ obj: unknown; msg: string }> = [];
    const logger = { ...silentLogger, error: (obj: unknown, msg: string) => void logged.push({ obj, msg }) } as unknown as typeof silentLogger;
    const audit: AuditSink = {
      append: async (e) => {
        if (e.event === 'sandbox.opened') throw new Error('disk full');
      },
      assertWritable: () => undefined,
      close: async () => undefined,
    };
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger });
    const boxes = new SandboxSessions({ stateDir: s, sessions, audit, logger });
    cleanup.push(async () => {
      await boxes.closeAll();
      await sessions.closeAll();
    });
    await expect(boxes.create('alice', 18998)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringMatching(/disk full.*not opened/) });
    expect(boxes.list()).toEqual([]);
    expect(readdirSync(join(s, 'run')).filter((f) => f.startsWith('s-'))).toEqual([]);
    expect(logged).toEqual([{ obj: { err: 'Error: disk full' }, msg: 'cannot audit a sandbox session; closing it' }]);
  });

  it('each session gets its own 0700 directory under run/ with a 0600 socket, and an audit record', async () => {
    const s = stateDir();
    const { boxes, records } = sandboxes(s);
    const a = await boxes.create('alice', 18999);
    const b = await boxes.create('alice', 18999);
    expect(a.id).not.toBe(b.id);
    expect(a.id).toMatch(/^[0-9a-f]{12}$/);
    for (const box of [a, b]) {
      expect(box.socketPath).toBe(join(s, 'run', `s-${box.id}`, 'mcp.sock'));
      expect(mode(dirname(box.socketPath))).toBe(0o700);
      expect(mode(join(s, 'run'))).toBe(0o700);
      expect(mode(box.socketPath)).toBe(0o600);
      expect(await socketAlive(box.socketPath)).toBe(true);
      expect(box).toMatchObject({ agent: 'alice', port: 18999, url: 'http://127.0.0.1:18999/mcp' });
    }
    expect(records).toEqual([
      { event: 'sandbox.opened', agent: 'alice', sandbox: a.id, port: 18999, egress: false },
      { event: 'sandbox.opened', agent: 'alice', sandbox: b.id, port: 18999, egress: false },
    ]);
    expect(boxes.list().map((x) => x.id)).toEqual([a.id, b.id]);
  });

  it.each([
    ['an empty name', ''],
    ['a path', '../root'],
    ['a name too long', 'a'.repeat(65)],
    ['a newline', 'alice\nbob'],
  ])('refuses an agent name that is %s (USAGE), creating nothing', async (_what, agent) => {
    const s = stateDir();
    const { boxes } = sandboxes(s);
    await expect(boxes.create(agent, 18999)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('invalid agent name') });
    expect(existsSync(join(s, 'run'))).toBe(false);
  });

  it.each([0, -1, 65536, 1.5, Number.NaN])('refuses port %s (USAGE)', async (port) => {
    const s = stateDir();
    const { boxes } = sandboxes(s);
    await expect(boxes.create('alice', port)).rejects.toMatchObject({ code: 'USAGE', message: 'port must be 1-65535' });
    expect(existsSync(join(s, 'run'))).toBe(false);
  });

  it('accepts the edge ports 1 and 65535', async () => {
    const { boxes } = sandboxes(stateDir());
    expect((await boxes.create('alice', 1)).port).toBe(1);
    expect((await boxes.create('alice', 65535)).port).toBe(65535);
  });

  it('a socket that cannot be opened (path too long for a unix socket) is SANDBOX_FAILED and leaves no directory behind', async () => {
    const base = stateDir();
    const deep = join(base, 'x'.repeat(100));
    mkdirSync(deep);
    const { boxes } = sandboxes(deep);
    await expect(boxes.create('alice', 18999)).rejects.toMatchObject({ code: 'SANDBOX_FAILED', message: expect.stringContaining('cannot open the session socket') });
    expect(statSync(join(deep, 'run')).isDirectory()).toBe(true);
    expect(boxes.list()).toEqual([]);
    expect(readdirSync(join(deep, 'run'))).toEqual([]);
  });

  it('closing a session removes its directory and socket', async () => {
    const { boxes, records } = sandboxes(stateDir());
    const a = await boxes.create('alice', 18999);
    expect(await boxes.close(a.id)).toBe(true);
    expect(existsSync(dirname(a.socketPath))).toBe(false);
    expect(await boxes.close(a.id)).toBe(false);
    expect(records.at(-1)).toEqual({ event: 'sandbox.closed', agent: 'alice', sandbox: a.id });
  });
});
