/**
 * The OTLP logs sink (the OpenTelemetry JS exporter, HTTP/protobuf) against
 * a collector stand-in that decodes the protobuf requests (otlp-decode.ts)
 * and, when told to, rejects some records with an OTLP partial success.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../helpers/gateway.js';
import { drained, FAST, startSiemGateway, type SiemGateway } from './helpers.js';
import { decodeLogsRequest, partialSuccess, type LogRecord } from './otlp-decode.js';

interface Collector {
  url: string;
  logs: LogRecord[];
  contentTypes: string[];
  auth: Array<string | undefined>;
  /** Answer 503 to this many requests first. */
  busy: number;
  /** Records it refuses: the rest of the request is kept, and the answer is a partial success naming how many were rejected. */
  reject?: (log: LogRecord) => boolean;
  /** Requests answered with a partial success. */
  partials: number;
  close(): Promise<void>;
}

async function startCollector(): Promise<Collector> {
  const c: Collector = { url: '', logs: [], contentTypes: [], auth: [], busy: 0, partials: 0, close: async () => undefined };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    c.contentTypes.push(String(req.headers['content-type']));
    c.auth.push(req.headers.authorization);
    if (req.url !== '/v1/logs') return void res.writeHead(404).end();
    if (c.busy > 0) {
      c.busy--;
      return void res.writeHead(503, { 'retry-after': '0' }).end();
    }
    const logs = decodeLogsRequest(Buffer.concat(chunks));
    const refused = c.reject === undefined ? [] : logs.filter(c.reject);
    c.logs.push(...logs.filter((l) => !refused.includes(l)));
    if (refused.length > 0) {
      // OTLP/HTTP: 200 with partial_success; the other records of the request are accepted.
      c.partials++;
      return void res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(partialSuccess(refused.length, 'log record rejected by the pipeline filter'));
    }
    // An empty ExportLogsServiceResponse: full success.
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
  c.close = () => new Promise<void>((r) => server.close(() => r()));
  return c;
}

let t: SiemGateway | undefined;
let col: Collector | undefined;
afterEach(async () => {
  await t?.close();
  await col?.close();
  t = undefined;
  col = undefined;
});

describe('OTLP logs sink', () => {
  it('each record is one LogRecord (time, severity, OCSF JSON body, seq/hash/event attributes) under a gatehouse resource', async () => {
    col = await startCollector();
    t = await startSiemGateway([{ name: 'otel', kind: 'otlp', url: col.url, headers: { Authorization: 'Bearer ${secret:otel-token}' }, ...FAST }], { secrets: { 'otel-token': 'otlp-token-0123456789' } });
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'to otel' } });
    await drained(t);
    const records = t.records();
    expect(col.logs.map((l) => Number(l.attributes['gatehouse.audit.seq']))).toEqual(records.map((r) => r.seq));
    expect(col.contentTypes.every((ct) => ct === 'application/x-protobuf')).toBe(true);
    expect(col.auth.every((a) => a === 'Bearer otlp-token-0123456789')).toBe(true);
    const call = col.logs.find((l) => l.attributes['gatehouse.audit.event'] === 'tools/call') as LogRecord;
    const record = records.find((r) => r.event === 'tools/call') as Record<string, unknown>;
    expect(call.attributes).toMatchObject({ 'gatehouse.audit.hash': record.hash, 'ocsf.class_uid': 6003n, 'ocsf.type_uid': 600399n });
    expect(call.eventName).toBe('tools/call');
    expect(call.severityNumber).toBe(9);
    expect(call.timeUnixNano).toBe(BigInt(Date.parse(record.time as string)) * 1_000_000n);
    expect(call.resource).toMatchObject({ 'service.name': 'gatehouse' });
    expect(call.scope.name).toBe('gatehouse.audit');
    expect(JSON.parse(call.body as string)).toMatchObject({ class_uid: 6003, metadata: { uid: record.hash } });
  });

  it('a collector answering 503 is retried; every record arrives once it accepts', async () => {
    col = await startCollector();
    col.busy = 8;
    t = await startSiemGateway([{ name: 'otel', kind: 'otlp', url: col.url, ...FAST, timeout: '2s' }]);
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'x' } });
    await until(() => col!.busy === 0, 'the busy answers to be used up');
    await drained(t);
    const seqs = col.logs.map((l) => Number(l.attributes['gatehouse.audit.seq']));
    expect(new Set(seqs).size).toBe(t.records().length);
  });

  it('a collector answering partial success (rejected_log_records > 0) is not an acknowledgment: the refused record is found, sent cut down, and nothing is lost', async () => {
    col = await startCollector();
    // Refuses any record carrying the arguments' text whole (a size or content filter in the collector's pipeline); accepts the same record cut.
    col.reject = (l) => String(l.body).includes('refuse-me-whole');
    t = await startSiemGateway([{ name: 'otel', kind: 'otlp', url: col.url, ...FAST }]);
    const client = await t.client('laptop-claude');
    await client.callTool({ name: 'fx__echo', arguments: { text: 'before' } });
    await client.callTool({ name: 'fx__echo', arguments: { text: 'refuse-me-whole' } });
    await client.callTool({ name: 'fx__echo', arguments: { text: 'after' } });
    const stats = await drained(t);
    expect(col.partials).toBeGreaterThan(0);
    const records = t.records();
    const arrived = new Set(col.logs.map((l) => Number(l.attributes['gatehouse.audit.seq'])));
    // Every record arrived (before the fix the refused ones were counted as shipped and never sent again).
    expect(records.map((r) => r.seq).filter((seq) => !arrived.has(seq as number))).toEqual([]);
    const refused = records.filter((r) => JSON.stringify(r).includes('refuse-me-whole')).map((r) => r.seq);
    expect(refused.length).toBeGreaterThan(0);
    for (const seq of refused) {
      const got = col.logs.filter((l) => Number(l.attributes['gatehouse.audit.seq']) === seq);
      expect(got.length).toBeGreaterThan(0);
      expect(got.every((l) => JSON.parse(l.body as string).metadata.is_truncated === true)).toBe(true);
    }
    expect(stats.truncated).toBe(refused.length);
  });

  it('a collector that keeps rejecting a record (partial success) holds the cursor before it and says so; nothing after it counts as shipped', async () => {
    col = await startCollector();
    col.reject = (l) => l.attributes['gatehouse.audit.event'] === 'tools/call';
    t = await startSiemGateway([{ name: 'otel', kind: 'otlp', url: col.url, ...FAST }]);
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'x' } });
    const call = await until(() => t!.records().find((r) => r.event === 'tools/call'), 'the tools/call record');
    const stats = await until(() => {
      const s = t!.stats();
      return s.failures >= 2 ? s : undefined;
    }, 'the sink to retry the refused record');
    expect(stats.lastError).toMatch(/rejected 1 of 1 log records \(partial success\): log record rejected by the pipeline filter/);
    expect(stats.lastShippedSeq ?? 0).toBeLessThan(call.seq as number);
    expect(stats.backlog).toBeGreaterThan(0);
    expect(col.logs.some((l) => l.attributes['gatehouse.audit.event'] === 'tools/call')).toBe(false);
  });
});
