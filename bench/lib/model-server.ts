/**
 * A lean provider simulator for the inference bench: node:http on 127.0.0.1,
 * every POST answered with an Anthropic Messages stream (message_start with
 * usage … message_stop). The request body sets the shape, in fields every
 * proxy passes on: `max_tokens` text deltas, `metadata.user_id: "gap=MS"`
 * between two (0: all at once), optionally `;first=MS` before the first byte. Each delta carries `"ts"`, the wall-clock
 * time it was written (ms, sub-ms precision), so a client on the same
 * machine can measure each event's delivery delay. Events are pre-built
 * strings; only the timestamp is formatted per event.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ModelServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one machine. */
/** The provider key the simulator expects (the gateway's secret store holds it). */
export const BENCH_PROVIDER_KEY = 'sk-ant-bench-0123456789abcdef';

export const wallMs = (): number => performance.timeOrigin + performance.now();

const START =
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":1}}}\n\n' +
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n';
const DELTA_HEAD = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lorem ipsum "},"ts":';
const stopEvents = (n: number) =>
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
  `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":${n}}}\n\n` +
  'event: message_stop\ndata: {"type":"message_stop"}\n\n';

const HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_bench' };

/** Starts the simulator; requests must carry `x-api-key: apiKey` (proves the gateway injected the provider key). */
export async function startModelServer(apiKey: string, port = 0): Promise<ModelServer> {
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => answer(req, Buffer.concat(chunks).toString('utf8'), res, apiKey));
  });
  server.maxHeadersCount = 64;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The shape a request asks for (see the file comment). */
export function benchBody(events: number, gapMs: number, stream = true, firstMs = 0): string {
  const userId = `gap=${gapMs}${firstMs > 0 ? `;first=${firstMs}` : ''}`;
  return JSON.stringify({ model: 'claude-bench', max_tokens: events, stream, metadata: { user_id: userId }, messages: [{ role: 'user', content: 'Say lorem ipsum.' }] });
}

function answer(req: IncomingMessage, body: string, res: ServerResponse, apiKey: string): void {
  if (req.headers['x-api-key'] !== apiKey) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}');
    return;
  }
  let events = 8;
  let gap = 0;
  let first = 0;
  try {
    const b = JSON.parse(body) as { max_tokens?: unknown; metadata?: { user_id?: unknown } };
    if (typeof b.max_tokens === 'number') events = Math.max(0, Math.floor(b.max_tokens));
    const m = /^gap=(\d+(?:\.\d+)?)(?:;first=(\d+(?:\.\d+)?))?$/.exec(String(b.metadata?.user_id ?? ''));
    if (m) gap = Number(m[1]);
    if (m?.[2] !== undefined) first = Number(m[2]);
  } catch {
    // Not JSON: the default shape.
  }
  // A real provider takes its time before the first byte (the model starts generating): `first=MS` waits that long.
  if (first > 0) setTimeout(() => respond(res, events, gap), first);
  else respond(res, events, gap);
}

function respond(res: ServerResponse, events: number, gap: number): void {
  res.writeHead(200, HEADERS);
  res.write(START);
  let closed = false;
  res.once('close', () => (closed = true));
  if (gap === 0) {
    let text = '';
    for (let i = 0; i < events; i++) text += `${DELTA_HEAD}${wallMs().toFixed(3)}}\n\n`;
    res.end(text + stopEvents(events));
    return;
  }
  // A fixed schedule (t0 + i·gap): a late timer does not shift the events after it.
  const t0 = performance.now();
  let i = 0;
  const tick = () => {
    if (closed) return;
    res.write(`${DELTA_HEAD}${wallMs().toFixed(3)}}\n\n`);
    i++;
    if (i >= events) {
      res.end(stopEvents(events));
      return;
    }
    const wait = t0 + (i + 1) * gap - performance.now();
    if (wait > 0) setTimeout(tick, wait);
    else setImmediate(tick);
  };
  setTimeout(tick, gap);
}
