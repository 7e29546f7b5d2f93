import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { cappedEvents, eventEnds, FRAMING_BYTES, readCapped } from '../../src/upstreams/body-limit.js';

const limit = { bytes: 1024, key: 'resultBytes' as const };
const chunks = (...parts: Array<string | Buffer>) => Readable.from(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
async function drain(it: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of it) n += c.length;
  return n;
}

describe('eventEnds: where SSE events end (blank lines, per the SSE spec: CRLF, LF or CR)', () => {
  it.each([
    ['data: a\n\ndata: b\n\n', -1, { first: 9, last: 18 }],
    ['data: a\r\n\r\n', -1, { first: 10, last: 10 }],
    ['data: a\r\rdata: b', -1, { first: 9, last: 9 }],
    ['no boundary here', -1, { first: -1, last: -1 }],
    // The blank line straddles two chunks.
    ['\ndata: b', 0x0a, { first: 1, last: 1 }],
  ])('%j (byte before: %d)', (text, prev, want) => {
    expect(eventEnds(Buffer.from(text), prev)).toEqual(want);
  });
});

describe('readCapped: a JSON body is capped whole', () => {
  it('a body within the limit (plus framing) is read', async () => {
    const body = 'x'.repeat(1024 + FRAMING_BYTES);
    expect((await readCapped(chunks(body), { limit, connector: 'c' })).toString()).toBe(body);
  });

  it('a body one byte over is refused, naming the size, the limit and how to raise it; the body is destroyed', async () => {
    const body = chunks('x'.repeat(3000), 'x'.repeat(3000));
    let told: GatehouseError | undefined;
    const e = await readCapped(body, { limit, connector: 'c', onOver: (x) => (told = x) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GatehouseError);
    expect(told).toBe(e);
    expect((e as GatehouseError).message).toBe(
      `connector "c" sent a result of more than 1 KiB, over its limit; the gateway stopped reading after 6,000 bytes. To allow more, raise limits.resultBytes in the connector's registry entry`,
    );
    expect(body.destroyed).toBe(true);
  });

  it('a Content-Length over the limit is refused before a byte is read', async () => {
    const body = chunks('x');
    const e = (await readCapped(body, { limit, connector: 'c', announced: 500_000_000 }).catch((x: unknown) => x)) as GatehouseError;
    expect(e.message).toContain('(it announced 500,000,000 bytes)');
    expect(e.message).toContain('the gateway did not read it');
    expect(body.destroyed).toBe(true);
  });
});

describe('cappedEvents: an SSE body is capped per event', () => {
  it('many events, each within the limit, pass however many bytes they add up to', async () => {
    const event = `data: ${'x'.repeat(900)}\n\n`;
    const parts = Array.from({ length: 100 }, () => event);
    expect(await drain(cappedEvents(chunks(...parts), { limit, connector: 'c' }))).toBe(event.length * 100);
  });

  it('one event over the limit, spread over many chunks, is refused and the body destroyed', async () => {
    const body = chunks('data: ', ...Array.from({ length: 10 }, () => 'x'.repeat(1000)), '\n\n');
    const e = (await drain(cappedEvents(body, { limit, connector: 'c' })).catch((x: unknown) => x)) as GatehouseError;
    expect(e.message).toMatch(/^connector "c" sent a message of more than 1 KiB, over its limit/);
    expect(body.destroyed).toBe(true);
  });

  it('an event that ends inside a chunk counts what came before the chunk', async () => {
    const body = chunks(`data: ${'x'.repeat(4000)}`, `${'x'.repeat(2000)}\n\ndata: small\n\n`);
    await expect(drain(cappedEvents(body, { limit, connector: 'c' }))).rejects.toThrow(/more than 1 KiB/);
  });
});
