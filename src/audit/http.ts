import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { GatehouseError, toHttpError } from '../errors.js';
import { FILTER_KEYS, parseAuditFilters } from './filter.js';
import { MAX_QUERY_LIMIT, queryAudit, type AuditFilters } from './query.js';

const KNOWN = new Set<string>([...FILTER_KEYS, 'cursor', 'limit', 'order']);

/** Reads query parameters into filters (parseAuditFilters, as `gatehouse logs` does); an unknown or repeated parameter is an error, not ignored. */
export function filtersFromParams(params: URLSearchParams, now = new Date()): { filters: AuditFilters; limit: number; order: 'asc' | 'desc'; cursor?: string } {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!KNOWN.has(key)) throw new GatehouseError('USAGE', `unknown query parameter "${key}"; known: ${[...KNOWN].join(', ')}`);
    if (seen.has(key)) throw new GatehouseError('USAGE', `query parameter "${key}" is given more than once`);
    seen.add(key);
  }
  const get = (k: string) => params.get(k) ?? undefined;
  const filters = parseAuditFilters(Object.fromEntries(FILTER_KEYS.map((k) => [k, get(k)])), { now });
  const limitText = get('limit') ?? '100';
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_QUERY_LIMIT) throw new GatehouseError('USAGE', `limit must be 1-${MAX_QUERY_LIMIT}`);
  const order = get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new GatehouseError('USAGE', 'order must be asc or desc');
  const cursor = get('cursor');
  return { filters, limit, order, ...(cursor !== undefined ? { cursor } : {}) };
}

/**
 * `GET /` → `{ records, nextCursor, more }`: one page of audit records,
 * newest first unless `order=asc`. Query parameters: since, until (1h / ISO
 * time), agent, session, connector, tool (glob), decision, outcome, event,
 * grep, limit (1-10000, default 100), order, cursor (from the previous page).
 * Mount it behind admin authentication: records name agents, tools and arguments.
 */
export function auditRoutes(dir: string): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    try {
      const q = filtersFromParams(new URL(c.req.url).searchParams);
      const page = await queryAudit(dir, q.filters, { limit: q.limit, order: q.order, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) });
      return c.json(page);
    } catch (e) {
      // A read failure (a file gone, unreadable) says the log cannot be read, never its own text.
      const { status, code, message } = toHttpError(e instanceof GatehouseError ? e : new GatehouseError('AUDIT_UNAVAILABLE', 'the audit log cannot be read'));
      return c.json({ error: { code, message } }, status as ContentfulStatusCode);
    }
  });
  return app;
}
