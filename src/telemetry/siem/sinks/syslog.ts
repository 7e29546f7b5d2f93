/**
 * Syslog over TCP (RFC 6587) and TLS (RFC 5425): each record one RFC 5424
 * message, framed by octet counting (`MSG-LEN SP SYSLOG-MSG`, RFC 6587
 * §3.4.1, the framing RFC 5425 §4.3 requires), so no byte of a record can
 * end a message early or start another.
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
 *
 * MSGID is the audit event, the structured data carries the fields a SIEM
 * filters on (seq, hash, agent, tool, decision, outcome…) and MSG is the
 * record or OCSF event as JSON in plain ASCII. SD values are for filtering
 * only (cut at 256 characters, control characters written as \uXXXX); MSG
 * is exact.
 *
 * TCP has no acknowledgment: a batch counts as shipped once the kernel took
 * it. A receiver that dies with bytes unread loses them (use the HEC sink
 * with `ack: true` where that matters).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fit, type Encoded } from '../encode.js';
import type { SyslogSinkConfig } from '../config.js';
import { SinkError, type Sink } from './sink.js';

/** RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' MUST be escaped with a backslash. */
export function sdEscape(value: string): string {
  const cut = value.length > 256 ? `${value.slice(0, 256)}…` : value;
  return cut
    .replace(/[\\"\]]/g, (c) => `\\${c}`)
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** PRINTUSASCII (%d33-126), at most `max` characters; '-' (NILVALUE) when nothing is left. */
export function printable(s: string, max: number): string {
  const out = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return out === '' ? '-' : out;
}

/** RFC 5424 §6.2.3 TIMESTAMP (FULL-DATE "T" FULL-TIME, at most 6 fraction digits). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The record's time as a TIMESTAMP: as stored when it is one (the writer's
 * ISO time), else converted, else NILVALUE — a time with spaces (a log
 * changed on disk) would shift every header field after it.
 */
export function timestamp(time: string): string {
  if (TIMESTAMP.test(time)) return time;
  const t = Date.parse(time);
  return Number.isFinite(t) ? new Date(t).toISOString() : '-';
}

/** OCSF severity_id → syslog severity (RFC 5424 §6.2.1): 1 Informational → 6, 2 Low → 5, 3 Medium → 4, 4 High → 3, 5 Critical → 2, 6 Fatal → 1. */
export function syslogSeverity(e: Encoded): number {
  const id = e.body.severity_id;
  if (typeof id === 'number') return ({ 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1 } as Record<number, number>)[id] ?? 6;
  const r = e.record;
  if (r.decision === 'deny') return 4;
  if (typeof r.outcome === 'string' && r.outcome !== 'ok' && r.outcome !== 'closed') return 5;
  return 6;
}

/** The fields put in the structured-data element, in this order, when the record has them. */
const SD_FIELDS = ['seq', 'hash', 'agent', 'session', 'connector', 'tool', 'decision', 'rule', 'outcome', 'host', 'port'] as const;

export interface SyslogHeader {
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
  sdId: string;
}

function structuredData(e: Encoded, sdId: string): string {
  const params: string[] = [];
  for (const k of SD_FIELDS) {
    const v = e.record[k];
    if (typeof v === 'string' || typeof v === 'number') params.push(`${k}="${sdEscape(String(v))}"`);
  }
  if (typeof e.body.class_uid === 'number') params.push(`class_uid="${e.body.class_uid}"`);
  if (e.truncated) params.push(`truncated="${e.truncated.bytes}"`);
  return `[${sdId} ${params.join(' ')}]`;
}

/** One RFC 5424 message (without framing), MSG cut to fit `maxBytes` in all. */
export function formatSyslog(e: Encoded, h: SyslogHeader, maxBytes: number, format: 'ocsf' | 'jsonl'): string {
  const pri = h.facility * 8 + syslogSeverity(e);
  const head = `<${pri}>1 ${timestamp(e.time)} ${h.hostname} ${h.appName} ${h.procId} ${printable(e.event, 32)} `;
  let sd = structuredData(e, h.sdId);
  if (Buffer.byteLength(head) + Buffer.byteLength(sd) + 64 > maxBytes) sd = '-';
  const room = maxBytes - Buffer.byteLength(head) - Buffer.byteLength(sd) - 1;
  const body = fit(e, room, format);
  if (body !== e && sd !== '-') sd = structuredData(body, h.sdId);
  // The message is ASCII JSON: MSG-ANY, no BOM needed (RFC 5424 §6.4).
  return `${head}${sd} ${body.json}`;
}

/** RFC 6587 §3.4.1 octet counting: the message's length in octets, a space, the message. */
export function frame(msg: string): Buffer {
  const b = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length} `), b]);
}

export class SyslogSink implements Sink {
  readonly #c: SyslogSinkConfig;
  readonly #header: SyslogHeader;
  readonly #tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  #socket: Socket | undefined;
  #dead = true;

  constructor(c: SyslogSinkConfig) {
    this.#c = c;
    this.#header = { facility: c.facility, hostname: printable(hostname(), 255), appName: c.appName, procId: String(process.pid), sdId: c.sdId };
    // Read once, at start: a missing file is a start-up error, not a retry loop.
    this.#tls =
      c.transport === 'tls'
        ? {
            ...(c.ca !== undefined ? { ca: readFileSync(c.ca) } : {}),
            ...(c.cert !== undefined ? { cert: readFileSync(c.cert) } : {}),
            ...(c.key !== undefined ? { key: readFileSync(c.key) } : {}),
          }
        : undefined;
  }

  async send(batch: readonly Encoded[], signal: AbortSignal): Promise<void> {
    const data = Buffer.concat(batch.map((e) => frame(formatSyslog(e, this.#header, this.#c.maxMessageBytes, this.#c.format))));
    const socket = await this.#connected(signal);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        cleanup();
        this.#drop();
        reject(err instanceof SinkError ? err : new SinkError('retry', `syslog ${this.#where()}: ${err.message}`));
      };
      const timer = setTimeout(() => fail(new SinkError('retry', `syslog ${this.#where()}: the receiver took no data for ${this.#c.timeout} ms`)), this.#c.timeout);
      const onClose = () => fail(new SinkError('retry', `syslog ${this.#where()}: the connection closed`));
      const onAbort = () => fail(new SinkError('retry', 'stopped'));
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
      };
      socket.on('error', fail);
      socket.on('close', onClose);
      signal.addEventListener('abort', onAbort);
      socket.write(data, (err) => {
        if (err) return fail(err);
        cleanup();
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const s = this.#socket;
    this.#drop();
    if (s !== undefined && !s.destroyed) await new Promise<void>((r) => s.end(r));
  }

  #where(): string {
    return `${this.#c.transport}://${this.#c.host}:${this.#port()}`;
  }

  #port(): number {
    return this.#c.port ?? (this.#c.transport === 'tls' ? 6514 : 514);
  }

  #drop(): void {
    this.#dead = true;
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  async #connected(signal: AbortSignal): Promise<Socket> {
    if (!this.#dead && this.#socket !== undefined && !this.#socket.destroyed) return this.#socket;
    this.#drop();
    const c = this.#c;
    const port = this.#port();
    const socket =
      c.transport === 'tls'
        ? tlsConnect({
            host: c.host,
            port,
            ...this.#tls,
            // The receiver's certificate must name it (RFC 5425 §5.2); an IP literal is checked against the certificate's IP addresses.
            ...(c.servername !== undefined ? { servername: c.servername } : isIP(c.host) === 0 ? { servername: c.host } : {}),
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
          })
        : netConnect({ host: c.host, port });
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        socket.off('error', done);
        signal.removeEventListener('abort', onAbort);
        socket.off(c.transport === 'tls' ? 'secureConnect' : 'connect', ok);
        if (err === undefined) return resolve();
        socket.destroy();
        reject(new SinkError('retry', `syslog ${this.#where()}: cannot connect: ${err.message}`));
      };
      const ok = () => done();
      const onAbort = () => done(new Error('stopped'));
      const timer = setTimeout(() => done(new Error(`no connection within ${c.timeout} ms`)), c.timeout);
      socket.once(c.transport === 'tls' ? 'secureConnect' : 'connect', ok);
      socket.once('error', done);
      signal.addEventListener('abort', onAbort);
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // The receiver sends nothing on this protocol; its closing (or any error) is what tells us to reconnect.
    socket.on('data', () => undefined);
    socket.on('end', () => this.#drop());
    socket.on('error', () => this.#drop());
    socket.on('close', () => {
      if (this.#socket === socket) this.#drop();
    });
    this.#socket = socket;
    this.#dead = false;
    return socket;
  }
}
