/**
 * A sandbox session that ends takes its egress tunnels with it: a CONNECT's
 * socket has left the HTTP server (closeAllConnections no longer sees it),
 * so without the session closing it the agent's tunnel would outlive the
 * sandbox (review F8).
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { EgressProxy } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { SandboxSessions } from '../../src/sandbox/sandbox-sessions.js';
import { SessionManager } from '../../src/server/mcp-sessions.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/gateway.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

describe('sandbox session egress tunnels', () => {
  it('closing_a_sandbox_session_closes_its_open_tunnels_at_once', async () => {
    const upstreamSockets: Socket[] = [];
    const upstream = createServer((s) => {
      upstreamSockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.push(() => void upstream.close());
    const upPort = (upstream.address() as AddressInfo).port;
    const records: AuditEvent[] = [];
    const audit: AuditSink = { append: async (e) => void records.push(e), assertWritable: () => undefined, close: async () => undefined };
    const policy = loadPolicyFiles(['/p/e.yaml'], memorySource({ '/p/e.yaml': `version: 1\nrules:\n  - id: up\n    match: { agent: alice, egress: { host: 127.0.0.1, port: ${upPort} } }\n    effect: allow\n` }));
    const egress = new EgressProxy({ policy: () => policy, audit, logger: silentLogger });
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit, logger: silentLogger });
    const boxes = new SandboxSessions({ stateDir: tempDir('gh-tun-'), sessions, audit, logger: silentLogger, egress });
    cleanup.push(async () => {
      await boxes.closeAll();
      await sessions.closeAll();
      egress.close();
    });
    const box = await boxes.create('alice', 18998, { egress: true });
    const client = connect(box.socketPath);
    let got = '';
    let closed = false;
    client.on('data', (b: Buffer) => (got += b.toString()));
    client.on('close', () => (closed = true));
    client.on('error', () => undefined);
    client.write(`CONNECT 127.0.0.1:${upPort} HTTP/1.1\r\nhost: 127.0.0.1:${upPort}\r\n\r\n`);
    await until(() => got.startsWith('HTTP/1.1 200') && upstreamSockets.length === 1, 'the tunnel to open');
    const upClosed = new Promise<void>((r) => upstreamSockets[0]?.once('close', () => r()));
    await boxes.close(box.id);
    await until(() => closed, 'the agent side of the tunnel to close', 2_000);
    await upClosed;
    await until(() => records.some((r) => r.event === 'egress' && r.outcome !== undefined), 'the tunnel record');
    expect(records.find((r) => r.event === 'egress')).toMatchObject({ agent: 'alice', sandbox: box.id, host: '127.0.0.1', port: upPort });
  });
});
