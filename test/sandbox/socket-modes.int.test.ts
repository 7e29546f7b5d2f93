/**
 * File modes are the only authentication of the local admin (the control
 * socket) and of sandbox sessions (a socket per session, no token): another
 * local user who can connect to either is the admin, or the agent. The modes
 * are checked on the real files of a running gateway, and another uid
 * (nobody, as root) must fail to connect through each layer on its own.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSession } from '../../src/sandbox/sandbox-sessions.js';
import { startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const PORT = 18932;

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  // The temporary root and state directory are 0700 (mkdtemp): open them up, so
  // only the gateway's own modes stand between another user and the sockets.
  chmodSync(t.root, 0o755);
  chmodSync(t.dirs.state, 0o755);
}, 60_000);
afterAll(async () => {
  await t?.close();
});

const mode = (p: string) => statSync(p).mode & 0o777;

/** Sets `modes` for the duration of `fn`, then puts back the modes that were there (not the expected ones: a break must stay visible to later tests). */
function withModes(modes: [path: string, mode: number][], fn: () => void): void {
  const before = modes.map(([p]) => [p, mode(p)] as const);
  try {
    for (const [p, m] of modes) chmodSync(p, m);
    fn();
  } finally {
    for (const [p, m] of before.reverse()) chmodSync(p, m);
  }
}

/** Connects to a unix socket as `uid` in a child process; prints "connected" or the error code. */
function connectAs(uid: number, path: string): string {
  const r = spawnSync(
    process.execPath,
    ['-e', `const s=require('node:net').connect(process.argv[1]);s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',(e)=>console.log(e.code))`, path],
    { uid, gid: uid, encoding: 'utf8', timeout: 10_000, cwd: '/' },
  );
  return `${r.stdout}${r.stderr}`.trim();
}

/** A sandbox session made the way `gatehouse run` makes it: over the control socket. */
function createOverControl(agent: string): Promise<SandboxSession> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ agent, port: PORT });
    const req = request(
      { socketPath: t.gw.controlSocket, method: 'POST', path: '/admin/v1/sandbox/sessions', headers: { host: 'localhost', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text) as SandboxSession) : reject(new Error(`${res.statusCode}: ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('control socket: only its owner can reach the admin API', () => {
  it('the control socket is 0600 in a 0700 directory', () => {
    const sock = t.gw.controlSocket;
    expect(statSync(sock).isSocket()).toBe(true);
    expect(mode(sock)).toBe(0o600);
    expect(mode(dirname(sock))).toBe(0o700);
  });

  it('another local user (nobody) cannot connect to the control socket: the directory alone stops it', () => {
    expect(IS_ROOT, 'connecting as another uid needs root to switch to it; run the tests as root').toBe(true);
    const sock = t.gw.controlSocket;
    expect(connectAs(0, sock)).toBe('connected'); // control: the child can connect at all
    withModes([[sock, 0o666]], () => expect(connectAs(NOBODY, sock)).toBe('EACCES'));
  });

  it('another local user (nobody) cannot connect to the control socket: the socket mode alone stops it', () => {
    expect(IS_ROOT, 'connecting as another uid needs root to switch to it; run the tests as root').toBe(true);
    const sock = t.gw.controlSocket;
    withModes([[dirname(sock), 0o755]], () => expect(connectAs(NOBODY, sock)).toBe('EACCES'));
  });
});

describe('sandbox session sockets: only the gateway user (the launcher\'s relay) can reach them', () => {
  let box: SandboxSession;
  beforeAll(async () => {
    box = await createOverControl('alice');
  });

  it('each session socket is 0600 in its own 0700 directory', () => {
    expect(statSync(box.socketPath).isSocket()).toBe(true);
    expect(mode(box.socketPath)).toBe(0o600);
    expect(mode(dirname(box.socketPath))).toBe(0o700);
    expect(mode(dirname(dirname(box.socketPath)))).toBe(0o700);
  });

  it('another local user (nobody) cannot connect as the agent: the session directory alone stops it', () => {
    expect(IS_ROOT, 'connecting as another uid needs root to switch to it; run the tests as root').toBe(true);
    expect(connectAs(0, box.socketPath)).toBe('connected');
    const run = dirname(dirname(box.socketPath));
    withModes(
      [
        [run, 0o755],
        [box.socketPath, 0o666],
      ],
      () => expect(connectAs(NOBODY, box.socketPath)).toBe('EACCES'),
    );
  });

  it('another local user (nobody) cannot connect as the agent: the socket mode alone stops it', () => {
    expect(IS_ROOT, 'connecting as another uid needs root to switch to it; run the tests as root').toBe(true);
    const run = dirname(dirname(box.socketPath));
    withModes(
      [
        [run, 0o755],
        [dirname(box.socketPath), 0o755],
      ],
      () => expect(connectAs(NOBODY, box.socketPath)).toBe('EACCES'),
    );
  });
});
