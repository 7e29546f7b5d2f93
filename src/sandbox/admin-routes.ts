import { Hono } from 'hono';
import { z } from 'zod';
import { GatehouseError } from '../errors.js';
import { adminBody } from '../server/json-body.js';
import type { SandboxSessions } from './sandbox-sessions.js';

const CreateBody = z.strictObject({ agent: z.string(), port: z.number().int(), egress: z.boolean().optional() });

/**
 * Admin routes for `gatehouse run` attaching to a running gateway. The session
 * lives as long as its lease request stays open, so a `run` that dies in any
 * way (even SIGKILL) leaves no socket behind.
 */
export function sandboxRoutes(sandboxes: SandboxSessions): Hono {
  const r = new Hono();
  r.get('/sessions', (c) => c.json({ sessions: sandboxes.list() }));
  r.post('/sessions', async (c) => {
    const body = await adminBody(c.req, CreateBody);
    return c.json(await sandboxes.create(body.agent, body.port, { egress: body.egress === true }), 201);
  });
  r.get('/sessions/:id/lease', (c) => {
    const id = c.req.param('id');
    if (!sandboxes.list().some((s) => s.id === id)) throw new GatehouseError('NOT_FOUND', `no sandbox session "${id}"`);
    const release = () => void sandboxes.close(id);
    c.req.raw.signal.addEventListener('abort', release, { once: true });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('leased\n'));
      },
      cancel: release,
    });
    return new Response(stream, { headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } });
  });
  r.delete('/sessions/:id', async (c) => {
    const ok = await sandboxes.close(c.req.param('id'));
    if (!ok) throw new GatehouseError('NOT_FOUND', `no sandbox session "${c.req.param('id')}"`);
    return c.json({ closed: true });
  });
  return r;
}
