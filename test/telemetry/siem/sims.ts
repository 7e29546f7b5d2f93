/**
 * Local stand-ins for the remote receivers a SIEM sink talks to (the real
 * rsyslog is used where it runs here; Splunk and a webhook receiver are
 * remote SaaS, so they are simulated from their documented shapes):
 *
 *  - Splunk HEC: `POST /services/collector/event` with `Authorization:
 *    Splunk <token>`, concatenated JSON event objects; answers
 *    `{"text":"Success","code":0}` (and `"ackId"` on a channel when
 *    indexer acknowledgment is on), 401 `{"text":"Token is required","code":2}`,
 *    403 `{"text":"Invalid token","code":4}`, 400 `{"text":"Invalid data
 *    format","code":6,"invalid-event-number":N}`, 503 `{"text":"Server is
 *    busy","code":9}`; `POST /services/collector/ack?channel=…` with
 *    `{"acks":[ids]}` answers `{"acks":{"id":true|false}}`.
 *  - A JSON webhook: any 2xx is success.
 *
 * Each records what it accepted, and can be switched to failing modes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type Mode = 'ok' | 'busy' | 'hang' | 'garbage' | 'garbage-200' | 'down';

export interface Received {
  /** Every event body accepted, in order (duplicates included). */
  events: Array<Record<string, unknown>>;
  /** Raw request bodies (accepted or not). */
  bodies: string[];
  headers: Array<Record<string, string | string[] | undefined>>;
}

/** The audit seq an event carries: OCSF metadata.sequence, or the record's seq. */
export function seqOf(e: Record<string, unknown>): number {
  const m = e.metadata as { sequence?: number } | undefined;
  return (m?.sequence ?? e.seq) as number;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Splits concatenated JSON objects (HEC's batch format: objects one after another). */
export function splitConcatenated(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}') {
      if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>);
    }
  }
  return out;
}

interface Sim {
  url: string;
  port: number;
  received: Received;
  mode: Mode;
  /** Requests answered with a failure or not at all. */
  failures: number;
  close(): Promise<void>;
}

async function listen(server: Server | NetServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server | NetServer, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
}

/** Serves a failing mode; true when it handled the request. */
function failing(sim: Sim, res: ServerResponse): boolean {
  if (sim.mode === 'ok') return false;
  sim.failures++;
  if (sim.mode === 'busy') {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' }).end('{"text":"Server is busy","code":9}');
  } else if (sim.mode === 'garbage-200') {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>\u0000\u001b[2J not json</html>');
  } else if (sim.mode === 'garbage') {
    // Not HTTP at all: random bytes on the socket, then closed.
    res.socket?.end(Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x0a, 0x0d, 0x0a, 0x0d, 0x0a, 0x7f]));
  } else if (sim.mode === 'down') {
    res.socket?.destroy();
  }
  // 'hang': never answer.
  return true;
}

export interface HecSim extends Sim {
  /** Tokens accepted (`Authorization: Splunk <token>`). */
  tokens: Set<string>;
  /** Indexer acknowledgment: answer ackIds and hold them unacknowledged for this many polls. */
  ack: boolean;
  ackDelayPolls: number;
  /** Events larger than this (bytes of their JSON) are refused as invalid data (400, code 6). */
  maxEventBytes: number;
  ackPolls: number;
}

export async function startHecSim(o: { tokens: string[]; ack?: boolean }): Promise<HecSim> {
  const sockets = new Set<Socket>();
  const pending = new Map<number, { events: Array<Record<string, unknown>>; polls: number }>();
  let nextAck = 0;
  const json = (res: ServerResponse, status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
  const server = createServer(async (req, res) => {
    const text = await body(req);
    sim.received.bodies.push(text);
    sim.received.headers.push(req.headers);
    if (failing(sim, res)) return;
    const auth = req.headers.authorization;
    if (auth === undefined) return json(res, 401, { text: 'Token is required', code: 2 });
    const m = /^Splunk (.+)$/.exec(auth);
    if (!m) return json(res, 401, { text: 'Invalid authorization', code: 3 });
    if (!sim.tokens.has(m[1] as string)) return json(res, 403, { text: 'Invalid token', code: 4 });
    const url = new URL(req.url ?? '/', 'http://x');
    const channel = req.headers['x-splunk-request-channel'];
    if (url.pathname === '/services/collector/ack') {
      if (!sim.ack) return json(res, 400, { text: 'ACK is disabled', code: 14 });
      if (channel === undefined || channel !== url.searchParams.get('channel')) return json(res, 400, { text: 'Data channel is missing', code: 10 });
      sim.ackPolls++;
      const ids = (JSON.parse(text) as { acks: number[] }).acks;
      const acks: Record<string, boolean> = {};
      for (const id of ids) {
        const p = pending.get(id);
        if (p === undefined) acks[id] = false;
        else if (p.polls >= sim.ackDelayPolls) {
          // Indexed now: the events count as received.
          sim.received.events.push(...p.events);
          pending.delete(id);
          acks[id] = true;
        } else {
          p.polls++;
          acks[id] = false;
        }
      }
      return json(res, 200, { acks });
    }
    if (url.pathname !== '/services/collector/event') return json(res, 404, { text: 'The requested URL was not found on this server.', code: 404 });
    if (sim.ack && channel === undefined) return json(res, 400, { text: 'Data channel is missing', code: 10 });
    let events: Array<Record<string, unknown>>;
    try {
      events = splitConcatenated(text);
    } catch {
      return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 });
    }
    if (events.length === 0) return json(res, 400, { text: 'No data', code: 5 });
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as Record<string, unknown>;
      if (e.event === undefined) return json(res, 400, { text: 'Event field is required', code: 12, 'invalid-event-number': i });
      if (JSON.stringify(e.event).length > sim.maxEventBytes) return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': i });
    }
    const bodies = events.map((e) => e.event as Record<string, unknown>);
    if (!sim.ack) {
      sim.received.events.push(...bodies);
      return json(res, 200, { text: 'Success', code: 0 });
    }
    const id = nextAck++;
    pending.set(id, { events: bodies, polls: 0 });
    return json(res, 200, { text: 'Success', code: 0, ackId: id });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  const sim: HecSim = {
    url: `http://127.0.0.1:${port}`,
    port,
    received: { events: [], bodies: [], headers: [] },
    mode: 'ok',
    failures: 0,
    tokens: new Set(o.tokens),
    ack: o.ack ?? false,
    ackDelayPolls: 0,
    maxEventBytes: Number.POSITIVE_INFINITY,
    ackPolls: 0,
    close: closer(server, sockets),
  };
  return sim;
}

export interface WebhookSim extends Sim {
  /**
   * Hold the next batch: store its events (the receiver has them) but never
   * answer, as a receiver whose acknowledgment is lost when the sender dies.
   */
  hold: boolean;
  /** The events of the held batch, once one was held. */
  held: Array<Record<string, unknown>> | undefined;
}

export async function startWebhookSim(): Promise<WebhookSim> {
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    const text = await body(req);
    sim.received.bodies.push(text);
    sim.received.headers.push(req.headers);
    if (failing(sim, res)) return;
    let events: Array<Record<string, unknown>>;
    try {
      events = JSON.parse(text) as Array<Record<string, unknown>>;
    } catch {
      res.writeHead(400).end('not JSON');
      return;
    }
    sim.received.events.push(...events);
    if (sim.hold && sim.held === undefined) {
      sim.held = events;
      return;
    }
    res.writeHead(204).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  const sim: WebhookSim = { url: `http://127.0.0.1:${port}/ingest`, port, received: { events: [], bodies: [], headers: [] }, mode: 'ok', failures: 0, hold: false, held: undefined, close: closer(server, sockets) };
  return sim;
}

/** A TCP server that accepts connections and never reads or answers (a sink that hangs). */
export async function startSilentServer(): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    out.connections++;
    sockets.add(s);
    s.pause();
  });
  const port = await listen(server);
  const out = { port, connections: 0, close: closer(server, sockets) };
  return out;
}
