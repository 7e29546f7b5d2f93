/**
 * The one control-socket client (src/server/control-client.ts), against a real
 * control socket served in process: what the CLI and `gatehouse run` see.
 */
import { rmSync } from 'node:fs';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { GatehouseError, exitCodeFor } from '../../src/errors.js';
import { adminRequest, ControlClient, gatewayRunning } from '../../src/server/control-client.js';
import { listenControl } from '../../src/server/control.js';
import { tempDir } from '../helpers/tmp.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function stateDir(): string {
  const d = tempDir('gh-ctl-');
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function serving(api: Hono): Promise<string> {
  const s = stateDir();
  const app = new Hono();
  app.route('/admin/v1', api);
  const ctl = await listenControl(s, app);
  cleanup.push(() => ctl.close());
  return s;
}

describe('ControlClient', () => {
  it('no gateway: GATEWAY_UNAVAILABLE (exit 3) saying how to start one for this state directory', async () => {
    const s = stateDir();
    expect(await gatewayRunning(s)).toBe(false);
    const e = await adminRequest(s, 'GET', '/status').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GatehouseError);
    expect((e as GatehouseError).code).toBe('GATEWAY_UNAVAILABLE');
    expect((e as GatehouseError).message).toContain(`start one with: gatehouse serve --state ${s}`);
    expect(exitCodeFor(e)).toBe(3);
  });

  it('sends JSON and returns the parsed answer', async () => {
    const s = await serving(new Hono().post('/echo', async (c) => c.json({ got: await c.req.json() })));
    expect(await gatewayRunning(s)).toBe(true);
    expect(await adminRequest(s, 'POST', '/echo', { a: 1 })).toEqual({ got: { a: 1 } });
  });

  it("an error answer keeps the gateway's code and message (so the exit code follows the error table)", async () => {
    const s = await serving(
      new Hono()
        .get('/missing', (c) => c.json({ error: { code: 'NOT_FOUND', message: 'no approval x' } }, 404))
        .get('/usage', (c) => c.json({ error: { code: 'USAGE', message: 'grant.ttl: invalid duration' } }, 400))
        .get('/odd', (c) => c.json({ error: { code: 'toString', message: 'odd' } }, 500)),
    );
    await expect(adminRequest(s, 'GET', '/missing')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no approval x' });
    await expect(adminRequest(s, 'GET', '/usage')).rejects.toMatchObject({ code: 'USAGE', message: 'grant.ttl: invalid duration' });
    // A code that is not ours (even an Object.prototype key) is INTERNAL.
    await expect(adminRequest(s, 'GET', '/odd')).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('a body that is not JSON is refused, not passed on', async () => {
    const s = await serving(new Hono().get('/text', (c) => c.text('hello')));
    await expect(adminRequest(s, 'GET', '/text')).rejects.toMatchObject({ code: 'GATEWAY_UNAVAILABLE', message: expect.stringContaining('not JSON') });
  });

  it('hold() keeps a lease request open until released', async () => {
    let open = false;
    let closed!: () => void;
    const ended = new Promise<void>((r) => (closed = r));
    const s = await serving(
      new Hono().get('/lease', (c) => {
        open = true;
        const body = new ReadableStream({
          start(ctrl) {
            ctrl.enqueue(new TextEncoder().encode('held\n'));
          },
          cancel() {
            open = false;
            closed();
          },
        });
        c.req.raw.signal.addEventListener('abort', () => {
          open = false;
          closed();
        });
        return new Response(body);
      }),
    );
    const client = new ControlClient(s);
    const release = await client.hold('/lease');
    expect(open).toBe(true);
    release();
    await ended;
    expect(open).toBe(false);
    await client.close();
  });
});
