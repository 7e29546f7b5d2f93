/**
 * A receiver (or a proxy in front of it) that echoes the request's
 * credential in its error page: what it said goes into the sink's error,
 * which `gatehouse status` and the admin API show and the log writes. The
 * credential must not (invariant 5: never in an error message).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/types.js';
import { HecSinkSchema, OtlpSinkSchema, WebhookSinkSchema } from '../../../src/telemetry/siem/config.js';
import { encodeRecord } from '../../../src/telemetry/siem/encode.js';
import { HecSink, WebhookSink } from '../../../src/telemetry/siem/sinks/http.js';
import { OtlpSink } from '../../../src/telemetry/siem/sinks/otlp.js';
import { SinkError } from '../../../src/telemetry/siem/sinks/sink.js';
import { partialSuccess } from './otlp-decode.js';

const TOKEN = '8f2c1d5e-7a3b-4c9d-9e1f-0a2b3c4d5e6f';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

/** A receiver answering `status` with a page that quotes the Authorization header (and the token alone). */
async function echoing(status: number): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const auth = String(req.headers.authorization ?? '');
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(`refused: header Authorization: ${auth} (token ${auth.split(' ')[1] ?? ''} is not valid)`);
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server?.address() as AddressInfo).port}`;
}

/**
 * An OTLP collector quoting the Authorization header (and the token alone):
 * in its status text and error body for `status`, or, for 200, in the
 * error_message of a partial success rejecting the record.
 */
async function echoingCollector(status: number): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const auth = String(req.headers.authorization ?? '');
      const said = `refused: header Authorization: ${auth} (token ${auth.split(' ')[1] ?? ''} is not valid)`;
      if (status === 200) return void res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(partialSuccess(1, said));
      res.writeHead(status, said, { 'content-type': 'text/plain' });
      res.end(said);
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server?.address() as AddressInfo).port}/v1/logs`;
}

const record = { v: 1, seq: 1, time: '2025-01-06T10:00:00.000Z', event: 'gateway.start', prev: '0'.repeat(64), hash: 'a'.repeat(64) } as AuditRecord;
const batch = [encodeRecord(record, JSON.stringify(record), 'ocsf', 't')];
const render = async (template: string) => template.replace(/\$\{secret:[^}]*\}/g, TOKEN);

async function errorOf(p: Promise<void>): Promise<SinkError> {
  try {
    await p;
  } catch (e) {
    return e as SinkError;
  }
  throw new Error('the send did not fail');
}

describe('a receiver that echoes the credential in its answer', () => {
  it.each([401, 400, 503])('HEC answering %i with the token quoted: the error names no token', async (status) => {
    const url = await echoing(status);
    const sink = new HecSink(HecSinkSchema.parse({ name: 'splunk', kind: 'splunk-hec', url, token: '${secret:splunk-hec-token}', timeout: '5s' }), render);
    try {
      const err = await errorOf(sink.send(batch, new AbortController().signal));
      expect(err).toBeInstanceOf(SinkError);
      expect(err.message).toContain(`answered HTTP ${status}`);
      expect(err.message).not.toContain(TOKEN);
    } finally {
      await sink.close();
    }
  });

  it.each([401, 400, 503])('webhook answering %i with the bearer token quoted: the error names no token', async (status) => {
    const url = await echoing(status);
    const sink = new WebhookSink(WebhookSinkSchema.parse({ name: 'hook', kind: 'webhook', url, headers: { Authorization: 'Bearer ${secret:siem-hook}' }, timeout: '5s' }), render);
    try {
      const err = await errorOf(sink.send(batch, new AbortController().signal));
      expect(err.message).toContain(`answered HTTP ${status}`);
      expect(err.message).not.toContain(TOKEN);
    } finally {
      await sink.close();
    }
  });

  it.each([
    [401, 'auth', 'HTTP 401'],
    [400, 'rejected', 'HTTP 400'],
    [200, 'rejected', 'rejected 1 of 1 log records (partial success)'],
  ])('OTLP collector answering %i with the Authorization header quoted (status text, body, partial-success message): the error names no token', async (status, kind, says) => {
    const url = await echoingCollector(status);
    const sink = new OtlpSink(OtlpSinkSchema.parse({ name: 'otel', kind: 'otlp', url, headers: { Authorization: 'Bearer ${secret:otel-token}' }, timeout: '5s' }), render, 't');
    try {
      const err = await errorOf(sink.send(batch, new AbortController().signal));
      expect(err).toBeInstanceOf(SinkError);
      expect(err.kind).toBe(kind);
      expect(err.message).toContain(says);
      // What the collector said is kept (it names the header), the credential is not.
      expect(err.message).toContain('refused: header Authorization: [REDACTED]');
      expect(err.message).not.toContain(TOKEN);
    } finally {
      await sink.close();
    }
  });
});
