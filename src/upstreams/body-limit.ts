/**
 * A cap on the bytes of an upstream's HTTP response body, counted as they
 * arrive (as hono's body-limit counts a request's): over it the response is
 * aborted, so memory never grows with what a hostile upstream sends
 * (measured: 100–530 MB results, 5.7 GB held for six at once).
 *
 * A JSON body is one message: all of it counts. A text/event-stream body is a
 * sequence of messages (progress and logs, then the result) that may run for
 * the whole call: each event counts on its own, from one blank line to the
 * next, since the SSE parser holds one event at a time (the number of events
 * is the notification limits' business).
 */
import type { Readable } from 'node:stream';
import { GatehouseError } from '../errors.js';
import type { BodyLimit } from './exchange.js';

/** Room for the JSON-RPC envelope and SSE framing around a result of `limit.bytes`. */
export const FRAMING_BYTES = 4096;

export interface CapOptions {
  limit: BodyLimit;
  connector: string;
  /** The Content-Length the upstream announced, for the message. */
  announced?: number | undefined;
  /** Told first when the cap is crossed (the call's exchange fails with it). */
  onOver?: (e: GatehouseError) => void;
}

/** SSE bytes handed to the SDK per turn of the event loop (see cappedEvents). */
const BYTES_PER_TURN = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const PAIRS = ['\n\n', '\n\r', '\r\r'];

const isPair = (a: number, b: number) => a === LF ? b === LF || b === CR : a === CR && b === CR;

/**
 * Where the first and the last SSE event in `chunk` end (the index after the
 * blank line), or -1. Per the SSE spec lines end in CRLF, LF or CR; two line ends
 * in a row make a blank line, and every such pair holds "\n\n", "\n\r" or
 * "\r\r". `prev` is the byte before the chunk (-1 if none).
 */
export function eventEnds(chunk: Buffer, prev: number): { first: number; last: number } {
  let first = -1;
  let last = -1;
  if (chunk.length > 0 && prev >= 0 && isPair(prev, chunk[0] as number)) first = last = 1;
  for (const p of PAIRS) {
    const i = chunk.indexOf(p, 0, 'latin1');
    if (i >= 0 && (first < 0 || i + 2 < first)) first = i + 2;
    const j = chunk.lastIndexOf(p, undefined, 'latin1');
    if (j >= 0 && j + 2 > last) last = j + 2;
  }
  return { first, last };
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n.toLocaleString('en-US')} bytes`;
}

/** `perEvent`: the cap was on one SSE event (a message), not on the whole body. */
export function bodyTooLarge(o: CapOptions, seen: number, perEvent: boolean): GatehouseError {
  const what = o.limit.key === 'toolListBytes' ? 'a tool list page' : perEvent ? 'a message' : 'a result';
  const announced = o.announced !== undefined ? ` (it announced ${o.announced.toLocaleString('en-US')} bytes)` : '';
  return new GatehouseError(
    'UPSTREAM_PROTOCOL',
    `connector "${o.connector}" sent ${what} of more than ${formatBytes(o.limit.bytes)}${announced}, over its limit; ` +
      `${seen > 0 ? `the gateway stopped reading after ${seen.toLocaleString('en-US')} bytes` : 'the gateway did not read it'}. To allow more, raise limits.${o.limit.key} in the connector's registry entry`,
    { details: { limit: o.limit.key, limitBytes: o.limit.bytes, bytesRead: seen, ...(o.announced !== undefined ? { announcedBytes: o.announced } : {}) } },
  );
}

/**
 * A JSON body, read whole (as the SDK would read it), rejecting and destroying
 * `body` once more than `limit.bytes + FRAMING_BYTES` have arrived. Node chunks
 * into one Buffer: a fraction of the cost of the same bytes through web streams.
 */
export async function readCapped(body: Readable, o: CapOptions): Promise<Buffer> {
  const max = o.limit.bytes + FRAMING_BYTES;
  const over = (seen: number) => {
    const e = bodyTooLarge(o, seen, false);
    o.onOver?.(e);
    body.destroy();
    return e;
  };
  // Announced too big: refused before a byte is read.
  if (o.announced !== undefined && o.announced > max) throw over(0);
  const chunks: Buffer[] = [];
  let count = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    count += chunk.length;
    if (count > max) throw over(count);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, count);
}

/**
 * The chunks of an SSE `body`, throwing (and destroying `body`) once one event
 * holds more than `limit.bytes + FRAMING_BYTES`. An async generator, for
 * `new Response()`: one web stream instead of Readable.toWeb plus a
 * TransformStream, a third less CPU per byte.
 */
export async function* cappedEvents(body: Readable, o: CapOptions): AsyncGenerator<Buffer> {
  const max = o.limit.bytes + FRAMING_BYTES;
  let count = 0;
  let prev = -1;
  let sinceTurn = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      // Fairness: the SDK parses every event of what it is given in one turn of the event loop (microtasks);
      // a flood of small events (100,000 notifications) would hold the loop for seconds against other agents.

      // The event under way when the chunk started ends at `first`; events wholly inside one chunk are no bigger than it.
      const { first, last } = eventEnds(chunk, prev);
      let seen = 0;
      if (first >= 0) {
        seen = count + first;
        count = chunk.length - last;
      } else {
        count += chunk.length;
      }
      if (chunk.length > 0) prev = chunk[chunk.length - 1] as number;
      seen = Math.max(seen, count);
      if (seen > max) {
        const e = bodyTooLarge(o, seen, true);
        o.onOver?.(e);
        throw e;
      }
      // Fairness: the SDK parses every event it is given in one turn of the event loop (microtasks); a
      // flood of small events (100,000 notifications) would hold the loop for seconds against other agents.
      for (let off = 0; off < chunk.length; off += BYTES_PER_TURN) {
        if (sinceTurn >= BYTES_PER_TURN) {
          sinceTurn = 0;
          await new Promise((r) => setImmediate(r));
        }
        const piece = off === 0 && chunk.length <= BYTES_PER_TURN ? chunk : chunk.subarray(off, off + BYTES_PER_TURN);
        sinceTurn += piece.length;
        yield piece;
      }
    }
  } finally {
    // Ended early (too big, or the reader cancelled): the connection goes too.
    if (!body.readableEnded) body.destroy();
  }
}

/**
 * Reads a request body (a Node IncomingMessage) chunk by chunk into `take`,
 * without web streams. When `take` refuses a chunk (throws), reading stops
 * there and the stream is paused, not destroyed: the rest is never read, and
 * the HTTP server drains or drops it after the refusal has been answered.
 */
export function readNodeBody(incoming: Readable, take: (chunk: Uint8Array) => void): Promise<void> {
  if (incoming.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stop = (err?: unknown): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', stop).off('close', onClose);
      if (err === undefined) return resolve();
      incoming.pause();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const onData = (chunk: Buffer): void => {
      try {
        take(chunk);
      } catch (e) {
        stop(e);
      }
    };
    const onEnd = (): void => stop();
    const onClose = (): void => stop(new Error('the agent went away while sending its request'));
    incoming.on('data', onData).on('end', onEnd).on('error', stop).on('close', onClose);
  });
}
