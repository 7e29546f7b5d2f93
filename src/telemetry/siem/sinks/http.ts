/**
 * HTTP sinks, through undici:
 *
 *  - Splunk HTTP Event Collector: `POST /services/collector/event` with
 *    `Authorization: Splunk <token>`, the batch as concatenated event
 *    objects `{"time","host","source","sourcetype","index","event"}`.
 *    Success is 200 with `{"text":"Success","code":0}`; with indexer
 *    acknowledgment (`ack: true`) the request names a channel
 *    (`X-Splunk-Request-Channel`), the answer carries an `ackId`, and the
 *    batch counts as shipped only once `POST /services/collector/ack`
 *    answers `{"acks":{"<id>":true}}`.
 *  - A generic JSON webhook: `POST url` with a JSON array of events and an
 *    `Idempotency-Key` naming the batch (first seq, last seq, last hash), so
 *    a receiver can drop a batch it already has; any 2xx is success.
 *
 * A receiver's answer is read up to 64 KiB; what it says goes into errors
 * as one escaped line.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Agent, Dispatcher } from 'undici';
import { undici } from '../../../undici.js';
import { asciiJson, fit, type Encoded } from '../encode.js';
import { secretNames, type HecSinkConfig, type WebhookSinkConfig } from '../config.js';
import { retryAfter, said, SinkError, type RenderSecret, type Sink } from './sink.js';

const MAX_ANSWER = 64 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * `text` without the credentials just sent (as is and JSON-escaped): a
 * receiver or a proxy that quotes the request in its error page must not put
 * them in the sink's error (status, admin API, log).
 */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length < 4) continue;
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) out = out.split(form).join('[REDACTED]');
  }
  return out;
}

/** The receiver's answer, read up to MAX_ANSWER bytes (a receiver cannot make us buffer more). */
async function answer(res: Dispatcher.ResponseData): Promise<Answer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER) {
      res.body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return { status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER) };
}

function dispatcher(ca: string | undefined, timeout: number): Agent {
  return new (undici().Agent)({
    connections: 2,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connectTimeout: timeout,
    ...(ca !== undefined ? { connect: { ca: readFileSync(ca) } } : {}),
  });
}

/** POSTs `body`; network failures and timeouts become a retryable SinkError. */
async function post(url: string, headers: Record<string, string>, body: string, agent: Agent, timeout: number, signal: AbortSignal, what: string, secrets: readonly string[]): Promise<Answer> {
  try {
    const res = await undici().request(url, { method: 'POST', headers, body, dispatcher: agent, signal: AbortSignal.any([signal, AbortSignal.timeout(timeout)]) });
    const a = await answer(res);
    return { ...a, text: scrub(a.text, secrets) };
  } catch (e) {
    const err = e as Error & { code?: string };
    const why = err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' ? `no answer within ${timeout} ms` : `${err.code ?? err.name}: ${said(scrub(err.message, secrets))}`;
    throw new SinkError('retry', `${what}: ${why}`);
  }
}

/** The common answers: 2xx is for the caller; 401/403 auth, 400/413/422 rejected, 408/429/5xx and the rest retried. */
function failure(a: Answer, what: string, detail = ''): SinkError {
  const text = detail !== '' ? detail : a.text !== '' ? `: ${said(a.text)}` : '';
  const msg = `${what} answered HTTP ${a.status}${text}`;
  if (a.status === 401 || a.status === 403) return new SinkError('auth', msg);
  if (a.status === 400 || a.status === 413 || a.status === 422) return new SinkError('rejected', msg);
  return new SinkError('retry', msg, retryAfter(a.headers['retry-after']));
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Splunk HEC status codes (Splunk docs, "Troubleshoot HTTP Event Collector"): the ones we act on. */
const HEC_CODES: Record<number, string> = {
  1: 'token disabled',
  2: 'token is required',
  3: 'invalid authorization',
  4: 'invalid token',
  5: 'no data',
  6: 'invalid data format',
  7: 'incorrect index',
  9: 'server is busy',
  10: 'data channel is missing (is indexer acknowledgment on for this token? set ack: true)',
  11: 'invalid data channel',
  12: 'event field is required',
  13: 'event field cannot be blank',
  14: 'ACK is disabled (set ack: false, or turn indexer acknowledgment on for the token)',
};

export class HecSink implements Sink {
  readonly #c: HecSinkConfig;
  readonly #render: RenderSecret;
  readonly #agent: Agent;
  readonly #host = hostname();
  /** One channel per run (X-Splunk-Request-Channel, a GUID). */
  readonly #channel = randomUUID();
  readonly #base: string;

  constructor(c: HecSinkConfig, render: RenderSecret) {
    this.#c = c;
    this.#render = render;
    this.#agent = dispatcher(c.ca, c.timeout);
    this.#base = new URL(c.url).origin;
  }

  async send(batch: readonly Encoded[], signal: AbortSignal): Promise<void> {
    const what = `Splunk HEC ${this.#base}`;
    const sourcetype = this.#c.sourcetype ?? (this.#c.format === 'ocsf' ? 'gatehouse:ocsf' : 'gatehouse:audit');
    // The envelope is written around each event's JSON as is (no second serialization).
    const envelope = (e: Encoded) =>
      `{"time":${(Date.parse(e.time) / 1000).toFixed(3)},"host":${asciiJson(this.#host)},"source":${asciiJson(this.#c.source)},"sourcetype":${asciiJson(sourcetype)}${this.#c.index !== undefined ? `,"index":${asciiJson(this.#c.index)}` : ''},"event":${e.json}}`;
    const body = batch.map((e) => envelope(fit(e, this.#c.batchBytes, this.#c.format))).join('\n');
    const { headers, token } = await this.#headers();
    const a = await post(`${this.#base}/services/collector/event`, { ...headers, 'content-type': 'application/json' }, body, this.#agent, this.#c.timeout, signal, what, [token]);
    const json = parseJson(a.text);
    const code = typeof json?.code === 'number' ? json.code : undefined;
    const text = code !== undefined ? ` (code ${code}: ${HEC_CODES[code] ?? said(String(json?.text ?? ''))})` : '';
    if (a.status !== 200) throw failure(a, what, text);
    // 200 is not enough: a proxy or a stranger may answer 200 too. HEC says code 0.
    if (code !== 0) throw new SinkError('retry', `${what} answered 200 without HEC's success ({"code":0}): ${said(a.text)}`);
    if (!this.#c.ack) return;
    const ackId = json?.ackId;
    if (typeof ackId !== 'number') throw new SinkError('retry', `${what}: no ackId in the answer (is indexer acknowledgment on for this token? set ack: false otherwise)`);
    await this.#acknowledged(ackId, headers, token, signal, what);
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }

  async #headers(): Promise<{ headers: Record<string, string>; token: string }> {
    const token = await this.#render(this.#c.token, 'token');
    return { headers: { authorization: `Splunk ${token}`, ...(this.#c.ack ? { 'x-splunk-request-channel': this.#channel } : {}) }, token };
  }

  /** Polls the ack endpoint until Splunk says the batch is indexed, or the ack timeout passes (then it is sent again). */
  async #acknowledged(ackId: number, headers: Record<string, string>, token: string, signal: AbortSignal, what: string): Promise<void> {
    const deadline = Date.now() + this.#c.ackTimeout;
    const every = Math.min(1_000, Math.max(10, Math.floor(this.#c.ackTimeout / 20)));
    for (;;) {
      await sleep(every, signal);
      const a = await post(`${this.#base}/services/collector/ack?channel=${this.#channel}`, { ...headers, 'content-type': 'application/json' }, JSON.stringify({ acks: [ackId] }), this.#agent, this.#c.timeout, signal, `${what} (ack)`, [token]);
      if (a.status !== 200) throw failure(a, `${what} (ack)`);
      const acks = parseJson(a.text)?.acks;
      if (acks !== null && typeof acks === 'object' && (acks as Record<string, unknown>)[String(ackId)] === true) return;
      if (Date.now() > deadline) throw new SinkError('retry', `${what}: batch (ackId ${ackId}) not acknowledged within ${this.#c.ackTimeout} ms; sending it again`);
    }
  }
}

export class WebhookSink implements Sink {
  readonly #c: WebhookSinkConfig;
  readonly #render: RenderSecret;
  readonly #agent: Agent;

  constructor(c: WebhookSinkConfig, render: RenderSecret) {
    this.#c = c;
    this.#render = render;
    this.#agent = dispatcher(c.ca, c.timeout);
  }

  async send(batch: readonly Encoded[], signal: AbortSignal): Promise<void> {
    const what = `webhook ${new URL(this.#c.url).origin}`;
    const headers: Record<string, string> = {};
    const secrets: string[] = [];
    for (const [k, v] of Object.entries(this.#c.headers)) {
      headers[k.toLowerCase()] = await this.#render(v, `header ${k}`);
      // Each credential alone too: a receiver may quote the token without its "Bearer ".
      for (const name of secretNames(v)) secrets.push(await this.#render(`\${secret:${name}}`, `header ${k}`));
    }
    const first = batch[0] as Encoded;
    const last = batch.at(-1) as Encoded;
    headers['content-type'] = 'application/json';
    headers['idempotency-key'] = `${first.seq}-${last.seq}-${last.hash.slice(0, 16)}`;
    const body = `[${batch.map((e) => fit(e, this.#c.batchBytes, this.#c.format).json).join(',')}]`;
    const a = await post(this.#c.url, headers, body, this.#agent, this.#c.timeout, signal, what, secrets);
    if (a.status < 200 || a.status > 299) throw failure(a, what);
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new SinkError('retry', 'stopped'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new SinkError('retry', 'stopped'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
