/**
 * The security console: a few static pages and the JSON they read, served
 * under /console/ on the gateway's TCP listener, for the admin only.
 *
 * Security model: no agent credential opens it (an Authorization header is
 * never read here). An admin asks the admin API (control socket, or an admin
 * token) for a one-time login URL; its secret sits in the URL fragment, so it
 * never reaches a request line or a log, and the page exchanges it once by
 * POST for an HttpOnly, SameSite=Strict session cookie (Secure over TLS).
 * Every state change also needs the session's CSRF token in a header. Host
 * and Origin are checked by the listener as for /mcp; every answer carries a
 * strict CSP with no inline script or style, and cannot be framed. Decisions
 * go through the admin API's own routes in the session's name
 * ("console:cs_…"), which the approval audit records carry.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditSink } from '../audit/types.js';
import type { Gateway } from '../broker/gateway.js';
import { GatehouseError, toHttpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApprovalEvent } from '../policy/approvals.js';
import type { Clock } from '../policy/grants.js';
import type { PolicyStore } from '../policy/store.js';
import { adminJson, allowedAdminRoute, callAdmin, decisionBody, type AdminFetch } from './admin-proxy.js';
import { loadAssets, type Asset } from './assets.js';
import { consoleAuditRoutes } from './audit-routes.js';
import { ConsoleEvents, type ConsoleEvent } from './events.js';
import { securityHeaders } from './headers.js';
import { consolePolicyRoutes } from './policy-routes.js';
import { ConsoleSessions, csrfMatches, type ConsoleSession, type SessionLimits } from './sessions.js';

export const CONSOLE_PATH = '/console';
export const SESSION_COOKIE = 'gatehouse_console';
export const CSRF_HEADER = 'x-gatehouse-csrf';
/** Request bodies of the console (decisions, explain): small. */
const MAX_BODY = 256 * 1024;

export interface ConsoleDeps {
  /** The admin API (createAdminApi), called in process. */
  admin: AdminFetch;
  gateway: Gateway;
  policies: PolicyStore;
  audit: AuditSink;
  auditDir: string;
  stateDir: string;
  logger: Logger;
  /** The TCP listener's base URL (`http://127.0.0.1:PORT`), once it listens; undefined without one. */
  baseUrl: () => string | undefined;
  clock?: Clock;
  limits?: Partial<SessionLimits>;
  pollMs?: number;
}

type Env = { Variables: { session: ConsoleSession } };

export interface GatehouseConsole {
  /** Routes under /console (mount at the TCP app's root). */
  app: Hono;
  /** `POST /login` under /admin/v1/console: a one-time login URL (admin API: control socket or admin token). */
  adminRoutes: Hono;
  /** Wire the Approvals' events here. */
  onApprovalEvent(ev: ApprovalEvent): void;
  close(): void;
}

export function createConsole(deps: ConsoleDeps): GatehouseConsole {
  const sessions = new ConsoleSessions({ ...(deps.clock ? { clock: deps.clock } : {}), ...(deps.limits ? { limits: deps.limits } : {}) });
  const liveState = async () => {
    const [status, agents, sandboxes] = await Promise.all([
      adminJson<Record<string, unknown>>(deps.admin, '/status'),
      adminJson<Record<string, unknown>>(deps.admin, '/sessions'),
      adminJson<{ sessions: unknown[] }>(deps.admin, '/sandbox/sessions'),
    ]);
    return { status, sessions: agents, sandboxes: sandboxes.sessions };
  };
  const events = new ConsoleEvents({ auditDir: deps.auditDir, state: liveState, ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}) });
  const onCatalog = () => events.poke();
  deps.gateway.on('catalog', onCatalog);
  const policy = consolePolicyRoutes(deps.policies, deps.gateway);
  let assets: ReadonlyMap<string, Asset> | undefined;
  const record = (event: string, s: ConsoleSession, extra: Record<string, unknown> = {}) =>
    void appendOrQueue(deps.audit, { event, consoleSession: s.id, ...extra }, deps.logger);

  // Full paths, not basePath: the page is /console/ (with its slash, so its relative URLs resolve under it).
  const P = CONSOLE_PATH;
  const app = new Hono<Env>();
  app.use(`${P}/*`, securityHeaders);
  app.use(P, securityHeaders);
  app.onError((err, c) => {
    const { status, code, message } = toHttpError(err);
    if (status >= 500) deps.logger.error({ err: err.message, path: c.req.path }, 'console request failed');
    return c.json({ error: { code, message } }, status as ContentfulStatusCode);
  });
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `no console route ${c.req.method} ${c.req.path}` } }, 404));

  // The pages: only the listed files (index.html for every page: they are one document).
  const asset = (name: string) => (c: { body: (b: string, s: 200, h: Record<string, string>) => Response }) => {
    assets ??= loadAssets();
    const a = assets.get(name) as Asset;
    return c.body(a.body, 200, { 'content-type': a.type });
  };
  app.get(P, (c) => c.redirect(`${P}/`, 308));
  app.get(`${P}/`, asset('index.html'));
  app.get(`${P}/console.css`, asset('console.css'));
  app.get(`${P}/console.js`, asset('console.js'));

  app.use(`${P}/api/*`, bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.json({ error: { code: 'USAGE', message: `request body exceeds ${MAX_BODY} bytes` } }, 413) }));

  // The one-time login: the secret from the fragment, once, for a session cookie. Needs no session (it makes one).
  app.post(`${P}/api/session`, async (c) => {
    if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) throw new GatehouseError('USAGE', 'Content-Type must be application/json');
    const body = (await c.req.json().catch(() => ({}))) as { secret?: unknown };
    const verdict = sessions.login(body?.secret);
    if (!verdict.ok) return c.json({ error: { code: 'AUTH_INVALID', message: verdict.reason } }, 401);
    setCookie(c, SESSION_COOKIE, verdict.cookie, {
      path: CONSOLE_PATH,
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: Math.floor(sessions.limits.sessionTtlMs / 1000),
    });
    record('console.login', verdict.session);
    return c.json(sessionView(verdict.session));
  });

  // Everything else: a live session; a state change also its CSRF token.
  const requireSession: MiddlewareHandler<Env> = async (c, next) => {
    const s = sessions.session(getCookie(c, SESSION_COOKIE));
    if (s === undefined) return c.json({ error: { code: 'AUTH_REQUIRED', message: 'no console session: run gatehouse console for a login link' } }, 401);
    const safe = c.req.method === 'GET' || c.req.method === 'HEAD';
    if (!safe && !csrfMatches(s, c.req.header(CSRF_HEADER))) {
      return c.json({ error: { code: 'CSRF', message: `a state change needs the session's CSRF token in the ${CSRF_HEADER} header` } }, 403);
    }
    c.set('session', s);
    return next();
  };
  app.use(`${P}/api/*`, requireSession);
  app.use(`${P}/events`, requireSession);

  app.get(`${P}/api/session`, (c) => c.json(sessionView(c.get('session'))));
  app.delete(`${P}/api/session`, (c) => {
    const s = sessions.logout(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH });
    if (s) record('console.logout', s);
    return c.json({ ok: true });
  });

  const proxy = async (c: Context<Env>, method: 'GET' | 'POST') => {
    const url = new URL(c.req.url);
    const path = url.pathname.slice(`${CONSOLE_PATH}/api/admin`.length);
    if (!allowedAdminRoute(method, path)) return c.json({ error: { code: 'NOT_FOUND', message: `the console has no admin route ${method} ${path}` } }, 404);
    const body = method === 'POST' ? decisionBody(await c.req.text(), `console:${c.get('session').id}`) : undefined;
    return callAdmin(deps.admin, method, `${path}${url.search}`, body);
  };
  app.get(`${P}/api/admin/*`, (c) => proxy(c, 'GET'));
  app.post(`${P}/api/admin/*`, (c) => proxy(c, 'POST'));
  app.get(`${P}/api/live`, async (c) => c.json(await liveState()));
  app.route(`${P}/api/audit`, consoleAuditRoutes(deps.auditDir, deps.stateDir));
  app.route(`${P}/api`, policy.routes);

  app.get(`${P}/events`, (c) => {
    const s = c.get('session');
    return streamSSE(c, async (stream) => {
      const queue: ConsoleEvent[] = [];
      let wake: (() => void) | undefined;
      const leave = events.subscribe((e) => {
        queue.push(e);
        wake?.();
      });
      if (leave === undefined) {
        await stream.writeSSE({ event: 'error', data: JSON.stringify({ message: 'too many console streams are open' }) });
        return;
      }
      stream.onAbort(() => wake?.());
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ session: s.id }) });
        while (!stream.aborted && sessions.alive(s)) {
          while (queue.length > 0) {
            const e = queue.shift() as ConsoleEvent;
            await stream.writeSSE({ event: e.event, data: JSON.stringify(e.data) });
          }
          // A comment line now and then keeps proxies from closing an idle stream, and notices a logout.
          await new Promise<void>((r) => {
            const t = setTimeout(r, 15_000);
            wake = () => {
              clearTimeout(t);
              r();
            };
          });
          wake = undefined;
          if (queue.length === 0) await stream.write(': keep-alive\n\n');
        }
      } finally {
        leave();
      }
    });
  });

  const adminRoutes = new Hono();
  adminRoutes.post('/login', (c) => {
    const base = deps.baseUrl();
    if (base === undefined) throw new GatehouseError('USAGE', 'this gateway has no TCP listener, so no browser can reach a console; start it with gatehouse serve');
    const login = sessions.issueLogin();
    return c.json({ url: `${base}${CONSOLE_PATH}/#login=${login.secret}`, expiresAt: new Date(login.expiresAt).toISOString() });
  });

  return {
    app: app as unknown as Hono,
    adminRoutes,
    onApprovalEvent: (ev) => events.approval(ev),
    close: () => {
      deps.gateway.off('catalog', onCatalog);
      policy.close();
      events.close();
      sessions.clear();
    },
  };
}

function sessionView(s: ConsoleSession) {
  return { session: s.id, csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() };
}
