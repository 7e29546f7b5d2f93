/**
 * The security console: a few static pages and the JSON they read, served
 * under /console/ on the gateway's TCP listener, for the admin only.
 *
 * Security model: no agent credential opens it (an Authorization header is
 * never read here). An admin asks the admin API (control socket, or an admin
 * token) for a one-time login URL; its secret sits in the URL fragment, so it
 * never reaches a request line or a log, and the page exchanges it once by
 * POST for an HttpOnly, SameSite=Strict session cookie (Secure over TLS) and
 * a session token that only that answer carries. Every request under
 * /console/api and /console/events needs both: browsers send cookies to every
 * port of a host (RFC 6265 §8.5) and SameSite counts ports as one site, so a
 * page on another loopback port gets the cookie; the token lives in the
 * page's sessionStorage, which is per origin (port included). Browsers'
 * `Sec-Fetch-Site` must say same-origin when sent. Host and Origin are checked
 * by the listener as for /mcp; every answer carries a strict CSP with no
 * inline script or style, and cannot be framed. Decisions go through the
 * admin API's own routes in the session's name ("console:cs_…"), which the
 * approval audit records carry.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, setCookie } from 'hono/cookie';
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
import { admitAgent } from '../server/listen.js';
import { adminJson, allowedAdminRoute, callAdmin, decisionBody, type AdminFetch } from './admin-proxy.js';
import { loadAssets, type Asset } from './assets.js';
import { consoleAuditRoutes } from './audit-routes.js';
import { ConsoleEvents, type ConsoleEvent } from './events.js';
import { securityHeaders } from './headers.js';
import { consolePolicyRoutes } from './policy-routes.js';
import { loginRefusal } from './login-guard.js';
import { ConsoleSessions, type ConsoleSession, type SessionLimits } from './sessions.js';
import { StreamQueue } from './stream-queue.js';

export const CONSOLE_PATH = '/console';
export const SESSION_COOKIE = 'gatehouse_console';
/** The session token's header (named for its first job, CSRF; now required on every API request). */
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
  /** Issue logins even when the listener is not loopback and has no TLS (serve --console-insecure). */
  allowInsecure?: boolean;
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

  // A browser says where a request comes from; only the console's own page may call its API (another port is same-site, not same-origin).
  const sameOrigin: MiddlewareHandler<Env> = async (c, next) => {
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin') return c.json({ error: { code: 'FORBIDDEN', message: `the console's API answers its own page only (Sec-Fetch-Site: ${site})` } }, 403);
    return next();
  };
  app.use(`${P}/api/*`, sameOrigin);
  app.use(`${P}/events`, sameOrigin);
  app.use(`${P}/api/*`, bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.json({ error: { code: 'USAGE', message: `request body exceeds ${MAX_BODY} bytes` } }, 413) }));

  // The one-time login: the secret from the fragment, once, for a session cookie and the session token. Needs no session (it makes one).
  // The only answer that ever carries the token.
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
    return c.json({ ...sessionView(verdict.session), csrf: verdict.session.csrf });
  });

  // Everything else, reads included: a session cookie and that session's token in the header.
  const requireSession: MiddlewareHandler<Env> = async (c, next) => {
    const s = sessions.authenticate(sessionCookies(c.req.header('cookie')), c.req.header(CSRF_HEADER));
    if (s === undefined) {
      return c.json({ error: { code: 'AUTH_REQUIRED', message: `no console session (a session cookie and its token in ${CSRF_HEADER}): run gatehouse console for a login link` } }, 401);
    }
    // The admin's connections count as an agent's: a flood of token-less connections must not evict them.
    const refused = admitAgent(c.req.raw, `console:${s.id}`);
    if (refused) return c.json({ error: { code: 'RATE_LIMITED', message: refused.message } }, refused.status, { 'retry-after': '1', connection: 'close' });
    c.set('session', s);
    return next();
  };
  app.use(`${P}/api/*`, requireSession);
  app.use(`${P}/events`, requireSession);

  app.get(`${P}/api/session`, (c) => c.json(sessionView(c.get('session'))));
  app.delete(`${P}/api/session`, (c) => {
    const s = c.get('session');
    sessions.end(s);
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH });
    record('console.logout', s);
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
      const queue = new StreamQueue<ConsoleEvent>();
      const leave = events.subscribe((e) => queue.push(e));
      if (leave === undefined) {
        await stream.writeSSE({ event: 'error', data: JSON.stringify({ message: 'too many console streams are open' }) });
        return;
      }
      stream.onAbort(() => queue.wake());
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ session: s.id }) });
        while (!stream.aborted && sessions.alive(s)) {
          const { resync, events: batch } = queue.take();
          // Events were dropped while this stream lagged: the page reloads what it shows instead.
          if (resync) await stream.writeSSE({ event: 'resync', data: '{}' });
          for (const e of batch) await stream.writeSSE({ event: e.event, data: JSON.stringify(e.data) });
          if (resync || batch.length > 0) continue;
          // A comment line now and then keeps proxies from closing an idle stream, and notices a logout.
          await queue.wait(15_000);
          if (queue.size === 0) await stream.write(': keep-alive\n\n');
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
    const refusal = loginRefusal(base, deps.allowInsecure === true);
    if (refusal !== undefined) throw new GatehouseError('USAGE', refusal);
    const login = sessions.issueLogin();
    void appendOrQueue(deps.audit, { event: 'console.login_issued', expiresAt: new Date(login.expiresAt).toISOString() }, deps.logger);
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

/** What a session is, without its secrets (the token goes out once, in the login answer). */
function sessionView(s: ConsoleSession) {
  return { session: s.id, expiresAt: new Date(s.expiresAt).toISOString() };
}

/** Every value of the session cookie in a Cookie header, in the order sent (RFC 6265 §5.4 allows several of one name). */
export function sessionCookies(header: string | undefined): string[] {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === SESSION_COOKIE) out.push(pair.slice(eq + 1).trim());
  }
  return out;
}
