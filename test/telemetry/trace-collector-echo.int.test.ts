/**
 * A trace collector (or a proxy in front of it) that refuses the gateway's
 * export and quotes the credential it was sent — the value of
 * OTEL_EXPORTER_OTLP_HEADERS — in its status text and its error body. What it
 * said goes into the gateway's log; the credential must not (invariant 5).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const TOKEN = 'otel-collector-token-7f3a9c1e5b2d';

let collector: Server;
let endpoint: string;
let requests = 0;
let t: TestGateway;
const logged: string[] = [];

beforeAll(async () => {
  collector = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      const auth = String(req.headers.authorization ?? '');
      const said = `refused: header Authorization: ${auth} (token ${auth.split(' ')[1] ?? ''} is not valid)`;
      res.writeHead(401, said, { 'content-type': 'text/plain' });
      res.end(said);
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const before = { ...process.env };
  // As an operator writes it (W3C baggage format: the space percent-encoded).
  Object.assign(process.env, { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${TOKEN}` });
  try {
    t = await startTestGateway({
      connectors: (log) => [stdioFixture('fx', log)],
      runtime: { logger: pino({ level: 'debug' }, { write: (l: string) => void logged.push(l) }) },
    });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in before)) delete process.env[k];
    Object.assign(process.env, before);
  }
});

afterAll(async () => {
  await t?.close();
  await new Promise((r) => collector?.close(r));
});

describe('a trace collector that echoes the Authorization header in its error answer', () => {
  it('the export failure is logged with what the collector said, and without the OTEL_EXPORTER_OTLP_HEADERS credential', async () => {
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'traced' } });
    const line = await until(() => logged.find((l) => l.includes('spans could not be exported')), 'the export failure in the log', 20_000);
    // The collector was sent the credential (so it could echo it)…
    expect(requests).toBeGreaterThan(0);
    const entry = JSON.parse(line) as { err: string; answer?: string };
    // …and what it said is logged, the credential redacted (status text and body alike).
    expect(entry.err).toContain('refused: header Authorization: [REDACTED]');
    expect(entry.answer).toContain('refused: header Authorization: [REDACTED]');
    expect(logged.join('\n')).not.toContain(TOKEN);
  });
});
