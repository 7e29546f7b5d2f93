/**
 * Attacks from the hostile review of the egress door (issue #15): request
 * smuggling through a chunked GET body, server-specific path traversal
 * spellings, and address ranges ipaddr.js calls "unicast".
 */
import { rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/writer.js';
import { addressProblem } from '../../src/egress/address.js';
import { EgressProxy } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { evaluateEgress } from '../../src/policy/egress.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { openLog, tempState } from '../audit/helpers.js';

const state = tempState();
let log: AuditLog;
let upstream: Server;
let upPort: number;
/** Every byte the upstream received, per connection. */
const received: string[] = [];
const servers: Server[] = [];

const policyOf = (port: number) =>
  loadPolicyFiles(
    ['/p/e.yaml'],
    memorySource({
      '/p/e.yaml': `version: 1\ndefault: deny\nrules:\n  - id: docs\n    match: { agent: web, egress: { host: 127.0.0.1, port: ${port}, method: [GET, POST], path: "/ok/**" } }\n    effect: allow\n`,
    }),
  );

beforeAll(async () => {
  log = await openLog(state.dir);
  // A raw upstream that answers one request and records all it got: a lenient server would read a second one.
  upstream = createServer((s) => {
    let got = '';
    const i = received.push('') - 1;
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      received[i] = got;
      if (got.includes('\r\n\r\n') && !/transfer-encoding: chunked/i.test(got.split('\r\n\r\n')[0] ?? '')) s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      else if (got.endsWith('0\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upPort = (upstream.address() as AddressInfo).port;
});

afterAll(async () => {
  upstream.close();
  for (const s of servers) s.close();
  await log.close();
  rmSync(state.state, { recursive: true, force: true });
});

async function proxyPort(): Promise<number> {
  const policy = policyOf(upPort);
  const proxy = new EgressProxy({ policy: () => policy, audit: log, logger: silentLogger });
  const server = createServer((s) => proxy.accept(s, { caller: { kind: 'agent', name: 'web' } }));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function send(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (b: Buffer) => (out += b.toString()));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    // Not half-closed: the answer is read to the end (connection: close).
    s.write(bytes);
  });
}

describe('egress review #15', () => {
  it('chunked_get_body_is_forwarded_chunked_so_no_second_request_can_be_smuggled', async () => {
    const port = await proxyPort();
    const smuggled = `DELETE /admin/everything HTTP/1.1\r\nhost: 127.0.0.1:${upPort}\r\n\r\n`;
    const body = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const before = received.length;
    const answer = await send(port, `GET http://127.0.0.1:${upPort}/ok/x HTTP/1.1\r\nhost: 127.0.0.1:${upPort}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${body}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    const got = received.slice(before).join('');
    const [head, rest] = [got.slice(0, got.indexOf('\r\n\r\n')), got.slice(got.indexOf('\r\n\r\n') + 4)];
    // The body arrives framed: the upstream reads it as a body, never as a request line of its own.
    expect(head).toMatch(/transfer-encoding: chunked/i);
    expect(rest.startsWith('DELETE')).toBe(false);
    expect(rest).toMatch(/^[0-9a-f]+\r\nDELETE/);
  });

  it.each([
    '/ok/..;/admin',
    '/ok/..%3b/admin',
    '/ok/%252e%252e/admin',
    '/ok/%u002e%u002e/admin',
    '/ok/..%00/admin',
    '/ok/...%2f/admin',
    '/ok/x;jsessionid=1/../../admin',
  ])('server_specific_traversal_spelling_%s_is_not_judged_by_an_allow_path_glob', (path) => {
    const d = evaluateEgress(policyOf(upPort), { caller: { kind: 'agent', name: 'web' }, host: '127.0.0.1', port: upPort, method: 'GET', path });
    expect(d.effect).toBe('deny');
  });

  it('ordinary paths under the glob are still allowed (the stricter check refuses only what it cannot judge)', () => {
    for (const path of ['/ok/a', '/ok/a-b_c.d~e/f', '/ok/%20space', '/ok/.well-known/x']) {
      expect(evaluateEgress(policyOf(upPort), { caller: { kind: 'agent', name: 'web' }, host: '127.0.0.1', port: upPort, method: 'GET', path }).effect).toBe('allow');
    }
  });

  it.each([
    ['::7f00:1', /outside global unicast/],
    ['fec0::1', /outside global unicast/],
    ['64:ff9b:1::a00:1', /NAT64|outside global unicast/],
    ['168.63.129.16', /metadata/],
  ])('address_%s_that_ipaddr_calls_unicast_is_refused', (a, why) => {
    expect(addressProblem(a)).toMatch(why);
  });
});
