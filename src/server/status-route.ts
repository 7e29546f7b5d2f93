import { Hono } from 'hono';
import type { SessionManager } from './mcp-sessions.js';

/**
 * `GET /sessions` under /admin/v1 (read-only): open MCP sessions per agent,
 * for `gatehouse status`. Session ids stay out: one is as good as a
 * credential to whoever holds the agent's token.
 */
export function sessionStatusRoutes(sessions: SessionManager): Hono {
  const r = new Hono();
  r.get('/', (c) => c.json({ total: sessions.size, agents: sessions.summary() }));
  return r;
}
