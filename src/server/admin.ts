import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { Gateway } from '../broker/gateway.js';
import { VERSION, type Dirs } from '../config/paths.js';
import { GatehouseError, toHttpError } from '../errors.js';
import type { Approvals } from '../policy/approvals.js';
import { requireDuration } from '../config/duration.js';
import { formatZodIssues } from '../config/zod-issues.js';
import { withSandbox } from '../registry/confinement.js';
import type { PinRow, PinStore } from '../tools/pins.js';
import type { SessionManager } from './mcp-sessions.js';

export interface AdminDeps {
  gateway: Gateway;
  sessions: SessionManager;
  approvals: Approvals;
  /** The registry, policies and state in use: `gatehouse run` keeps them out of every sandbox. */
  dirs?: Dirs;
  /** Extra routes mounted under /admin/v1 (audit query, sandbox sessions). */
  mounts?: Array<{ path: string; app: Hono }>;
  /** Tool pins: /status counts each connector's quarantined tools. */
  pins?: PinStore;
}

/** The tools of `connector` withheld from the agent until an admin approves them (a change served in pin mode warn is not withheld). */
export function quarantinedTools(pins: PinStore, connector: string): PinRow[] {
  return pins.list(connector).filter((r) => r.state !== 'pinned' && !r.served);
}

const DecideBody = z.strictObject({
  by: z.string().min(1).max(100).optional(),
  reason: z.string().max(500).optional(),
  grant: z.strictObject({ ttl: z.string(), uses: z.number().int().min(1).max(100_000) }).optional(),
  /** Egress approvals from a sandbox session: the grant covers that session only (without `grant`: as large as the rule allows). */
  session: z.boolean().optional(),
  /** Refuse a grant beyond the rule's `ask.grant` instead of cutting it down (the console always asks so). */
  exact: z.boolean().optional(),
});

/**
 * The admin API (local admin only: the control socket, or a token with the
 * admin scope on TCP). JSON in, JSON out; errors are `{ error: { code, message } }`.
 */
export function createAdminApi(deps: AdminDeps): Hono {
  const api = new Hono();
  api.onError((err, c) => {
    const { status, code, message } = toHttpError(err);
    return c.json({ error: { code, message } }, status as ContentfulStatusCode);
  });

  // Each stdio connector says whether it runs confined (`sandbox: "confined" | "off"`); with pins, each says how many tools wait for approval.
  api.get('/status', (c) => {
    const pins = deps.pins;
    const rows = withSandbox(deps.gateway.report(), deps.gateway.opts.registry.connectors);
    const connectors = pins === undefined ? rows : rows.map((r) => ({ ...r, quarantined: quarantinedTools(pins, r.name).length }));
    return c.json({ version: VERSION, pid: process.pid, sessions: deps.sessions.size, connectors, pendingApprovals: deps.approvals.list().length, ...(deps.dirs ? { dirs: deps.dirs } : {}) });
  });

  api.get('/approvals', (c) => c.json({ pending: deps.approvals.list(), grants: deps.approvals.grants(), withdrawn: deps.approvals.withdrawn() }));

  const decideBody = async (req: Request) => {
    let raw: unknown = {};
    const text = await req.text();
    if (text.trim() !== '') {
      try {
        raw = JSON.parse(text);
      } catch {
        throw new GatehouseError('USAGE', 'request body is not valid JSON');
      }
    }
    const parsed = DecideBody.safeParse(raw);
    if (!parsed.success) throw new GatehouseError('USAGE', `invalid body: ${formatZodIssues(parsed.error.issues)}`);
    return parsed.data;
  };

  api.post('/approvals/:id/approve', async (c) => {
    const body = await decideBody(c.req.raw);
    let grant;
    if (body.grant) {
      grant = { ttlMs: requireDuration(body.grant.ttl, 'grant.ttl'), maxUses: body.grant.uses };
    }
    const r = await deps.approvals.approve(c.req.param('id'), { by: body.by ?? 'admin', ...(grant ? { grant } : {}), ...(body.session === true ? { session: true } : {}), ...(body.exact === true ? { exact: true } : {}) });
    return c.json(r);
  });

  api.post('/approvals/:id/deny', async (c) => {
    const body = await decideBody(c.req.raw);
    const r = deps.approvals.deny(c.req.param('id'), { by: body.by ?? 'admin', ...(body.reason !== undefined ? { reason: body.reason } : {}) });
    return c.json({ approval: r });
  });

  api.delete('/grants/:id', async (c) => c.json({ grant: await deps.approvals.revokeGrant(c.req.param('id')) }));

  for (const m of deps.mounts ?? []) api.route(m.path, m.app);
  api.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `no admin route ${c.req.method} ${c.req.path}` } }, 404));
  return api;
}
