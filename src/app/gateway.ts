/**
 * The gateway wired from its parts: configuration, audit, policy, secrets,
 * upstreams, sessions, the admin API and the listeners. Wiring only: each
 * decision lives in the part that owns it.
 */
import { dirname, join } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import { appendAuditRecord } from '../audit/append.js';
import { appendOrQueue } from '../audit/append-or-queue.js';
import { auditRoutes } from '../audit/http.js';
import { AuditLog, type AuditLogOptions } from '../audit/writer.js';
import type { AuditSink } from '../audit/types.js';
import { Gateway } from '../broker/gateway.js';
import { policyAuthorizer } from '../broker/policy-gate.js';
import { createSessionServer } from '../broker/session-server.js';
import { StatelessMcp } from '../broker/stateless-server.js';
import type { Dirs } from '../config/paths.js';
import { VERSION } from '../config/paths.js';
import { createLogger, setLogLineFilter, type Logger } from '../log.js';
import { approvalStateIn } from '../policy/approval-state.js';
import { approvalRecord } from '../policy/approval-audit.js';
import { Approvals, type ApprovalEvent } from '../policy/approvals.js';
import { PolicyStore } from '../policy/store.js';
import { loadRegistry, type Registry } from '../registry/load.js';
import { RegistryStore, type RegistryChange } from '../registry/store.js';
import { ConfigError } from '../config/load-yaml.js';
import { connectorSecrets, isProvider, type InferenceProvider } from '../registry/schema.js';
import { unconfinedField } from '../registry/confinement.js';
import { Budgets } from '../inference/budget.js';
import { InferenceRouter } from '../inference/proxy.js';
import { bindSecrets } from '../secrets/bindings.js';
import { KeychainStore } from '../secrets/keychain.js';
import { noticeDir } from '../secrets/notice.js';
import { addLogRedactor, redactLogLine, Redactor } from '../secrets/redact.js';
import type { SecretStore } from '../secrets/store.js';
import { StoreResolver } from '../secrets/resolve.js';
import { Hono } from 'hono';
import { createConsole } from '../console/console.js';
import { createAdminApi } from '../server/admin.js';
import { createApp } from '../server/app.js';
import { agentAuthenticator, requireAdmin } from '../server/auth.js';
import { listenControl } from '../server/control.js';
import { sandboxRoutes } from '../sandbox/admin-routes.js';
import { SandboxSessions } from '../sandbox/sandbox-sessions.js';
import { connectorConfiner } from '../sandbox/confine-connector.js';
import { PinStore } from '../tools/pins.js';
import { screenTool, type Finding } from '../tools/screen.js';
import { toolsRoutes } from '../server/tools-routes.js';
import { createEgressProxy, type EgressProxy, type Resolver } from '../egress/proxy.js';
import { egressOffered } from '../policy/egress.js';
import { RateLimiter } from '../policy/rate-limit.js';
import { allowedHosts, allowedOrigins } from '../server/guards.js';
import { isWildcard, listenerAddresses, listenTcp, type HttpLimits } from '../server/listen.js';
import { SessionManager } from '../server/mcp-sessions.js';
import { loadTokenKeys, TokenVerifier, type TokenKeys } from '../server/tokens.js';
import { RevocationList } from '../server/revocations.js';
import { revocationRoutes } from '../server/revocation-routes.js';
import { sessionStatusRoutes } from '../server/status-route.js';
import { listenMetrics, metricsHandler } from '../server/metrics-route.js';
import { GatewayMetrics, type MetricsOptions } from '../telemetry/metrics.js';
import { startTracing, tracingConfig, type Tracing } from '../telemetry/traces.js';
import { loadSiemConfig, siemRoutes, sinkSecrets, startSiem, type Siem, type SiemConfig } from '../telemetry/siem/index.js';
import { ownerByName } from '../secrets/bindings.js';

export interface GatewayRuntimeOptions {
  dirs: Dirs;
  host?: string;
  port?: number;
  /** Extra Host names accepted (`NAME` on the listening port, or `NAME:PORT`), e.g. behind a proxy. */
  allowedHosts?: string[];
  allowedOrigins?: string[];
  /** Issue console logins on a listener beyond loopback (plain HTTP: the login and session cross the network readable). */
  consoleInsecure?: boolean;
  logger?: Logger;
  /** Where secret values come from (default: the OS keychain). */
  secrets?: SecretStore;
  /** How long a secret value read from the store is reused (default 500 ms; see StoreResolverOptions.cacheMs). */
  secretCacheMs?: number;
  /** How often referenced secrets are re-read to detect rotation (default 3 s). */
  secretPollMs?: number;
  maxBodyBytes?: number;
  /** Connection limits of the /mcp listeners (see src/server/listen.ts); tests shorten them. */
  http?: Partial<HttpLimits>;
  /** How long start-up waits for upstreams before serving anyway. */
  upstreamWaitMs?: number;
  backoffMs?: number;
  /** Serve /mcp on TCP (default true). `gatehouse run` with an in-process gateway needs only sandbox sockets. */
  tcp?: boolean;
  /** Open MCP sessions: across the gateway, per token agent or sandbox, idle time (see src/server/mcp-sessions.ts). */
  maxSessions?: number;
  maxSessionsPerAgent?: number;
  sessionIdleMs?: number;
  /** How often the registry folder is checked for changes fs.watch missed (default 2 s; 0 = never). */
  registryPollMs?: number;
  /** How the egress proxy resolves host names (default: the system's, getaddrinfo); tests name their simulators with it. */
  egressResolve?: Resolver;
  /** Audit log tuning: checkpoint cadence, rotation size, retention (see src/audit/writer.ts). */
  audit?: Omit<AuditLogOptions, 'dir' | 'listen' | 'logger'>;
  /** The SIEM shipping file (src/telemetry/siem/config.ts): the audit log shipped to syslog, Splunk HEC, a webhook or OTLP. */
  siem?: string;
  /** Also serve /metrics on a listener of its own, without a token (serve --metrics-listen). */
  metricsListen?: { host: string; port: number };
  /** Metrics label bounds (src/telemetry/metrics.ts); tests lower them. */
  metrics?: Pick<MetricsOptions, 'maxAgents' | 'maxTools' | 'maxModels' | 'processMetrics'>;
  /** Tracing: default as the OTEL_* variables of this process say (off without an endpoint); false: off. */
  tracing?: Tracing | false;
  /** For `serve`'s notices: every approval event, and the gateway just before start-up waits for its upstreams. */
  onApprovalEvent?: (ev: ApprovalEvent) => void;
  onUpstreamsStarting?: (gateway: Gateway) => void;
}

export interface RunningGateway {
  /** The /mcp URL on this machine (loopback for a wildcard bind); '' without TCP. */
  url: string;
  /** Every /mcp URL the listener can be reached at: each interface's for a wildcard bind. */
  urls: string[];
  port: number;
  host: string;
  gateway: Gateway;
  keys: TokenKeys;
  sessions: SessionManager;
  approvals: Approvals;
  policies: PolicyStore;
  /** Model calls on /llm/<provider>/… */
  inference: InferenceRouter;
  controlSocket: string;
  sandboxes: SandboxSessions;
  /** Connections out of sandboxes (see src/egress/). */
  egress: EgressProxy;
  revocations: RevocationList;
  audit: AuditSink;
  logger: Logger;
  /** SIEM shipping, when configured (`siem`). */
  siem: Siem | undefined;
  /** Prometheus metrics (served at /metrics). */
  metrics: GatewayMetrics;
  /** The --metrics-listen URL, when asked for. */
  metricsUrl?: string;
  /** Traces, when the OTEL_* variables configure an endpoint. */
  tracing: Tracing | undefined;
  close(graceMs?: number): Promise<void>;
}

/** Loads configuration, starts upstreams and serves /mcp on TCP. */
export async function startGateway(opts: GatewayRuntimeOptions): Promise<RunningGateway> {
  const logger = opts.logger ?? createLogger();
  let registry: Registry;
  try {
    registry = loadRegistry(opts.dirs.registry);
  } catch (e) {
    // A rejected registry is audited too (the gateway does not start on it).
    if (e instanceof ConfigError) {
      await appendAuditRecord(opts.dirs.state, { event: 'registry.reload', ok: false, dir: opts.dirs.registry, error: e.message }).catch((err: unknown) =>
        logger.error({ err: String(err) }, 'audit: the rejected registry could not be recorded'),
      );
    }
    throw e;
  }
  const registryStore = new RegistryStore(registry, opts.registryPollMs !== undefined ? { pollMs: opts.registryPollMs } : {});
  // Which connector may receive which secret; a registry reload rebinds (see applyRegistryChange).
  const secretBindings = { owner: bindSecrets(registry.connectors).bindings.owner };
  // A SIEM sink may not use a connector's credential (it would ship it to the SIEM): checked against the binding rule.
  const siemConfig: SiemConfig | undefined =
    opts.siem === undefined ? undefined : loadSiemConfig(opts.siem, { secretOwner: (n) => secretBindings.owner.get(n) ?? ownerByName(n, registry.connectors.map((c) => c.name)) });
  const policies = new PolicyStore(opts.dirs.policies);
  const keys = await loadTokenKeys(opts.dirs.state);
  // A bad OTEL_* value stops the start here, before anything else is opened; without an endpoint the SDK is not loaded.
  const otel = opts.tracing === undefined ? tracingConfig(process.env) : undefined;
  const tracing = opts.tracing === false ? undefined : (opts.tracing ?? (otel ? await startTracing(otel, logger) : undefined));
  // Label bounds need the catalog and the providers, which exist further down.
  const known = { tool: (_: string) => false, provider: (_: string) => false };
  const metrics = new GatewayMetrics({ ...opts.metrics, knownTool: (n) => known.tool(n), knownProvider: (n) => known.provider(n) });
  const audit = await AuditLog.open({ ...opts.audit, dir: join(opts.dirs.state, 'audit'), listen: true, logger, observe: metrics.audit });
  // Checked on every request, cached tokens too; an unreadable list refuses every token.
  const revocations = new RevocationList(opts.dirs.state, {
    onChange: (ev) => {
      if (!ev.ok) logger.error({ error: ev.error }, 'token revocation list unreadable: every token is refused');
      else logger.info({ tokens: ev.tokens, agents: ev.agents }, 'token revocation list reloaded');
      void appendOrQueue(audit, { event: 'token.revocations', ...ev }, logger);
    },
  });
  const verifier = new TokenVerifier(keys, 1024, revocations);
  // Set once the console exists: it shows approvals the moment they wait.
  let consoleApproval: (ev: ApprovalEvent) => void = () => undefined;
  // Pending approvals and grants survive a restart (the audit lock above makes this gateway the state's only writer).
  const approvals = new Approvals({
    state: approvalStateIn(opts.dirs.state),
    onEvent: (ev) => {
      if (ev.type === 'state_rejected') logger.error({ file: ev.file, error: ev.error, movedTo: ev.movedTo }, 'approval state rejected: starting with no grants');
      if (ev.type === 'state_error') logger.error({ file: ev.file, error: ev.error }, 'cannot save the approval state');
      void appendOrQueue(audit, approvalRecord(ev), logger);
      approvalMetric(metrics, ev);
      consoleApproval(ev);
      opts.onApprovalEvent?.(ev);
    },
  });
  const { authorize, hidden } = policyAuthorizer({ policy: () => policies.current(), approvals });
  // Set once the gateway exists: a reload may change what each agent sees (tools hidden by policy).
  let policyChanged: () => void = () => undefined;
  const unwatchPolicies = policies.watch((ev) => {
    if (ev.ok) policyChanged();
    if (ev.ok) logger.info({ files: ev.files, digest: ev.digest }, 'policy reloaded');
    else logger.error({ error: ev.error }, 'policy reload rejected; the previous policy stays in force');
    void appendOrQueue(audit, { event: 'policy.reload', ok: ev.ok, files: ev.files, changed: ev.changed, digest: ev.digest, ...(ev.ok ? {} : { error: ev.error }) }, logger);
  });
  // Values come from the keychain at the last moment, only to the connector they are bound to;
  // every value read is redacted from results, errors, progress, audit records and log lines.
  const redactor = new Redactor();
  setLogLineFilter(redactLogLine);
  const unregisterRedactor = addLogRedactor(redactor);
  const secretStore = opts.secrets ?? new KeychainStore();
  const secrets = new StoreResolver(secretStore, {
    bindings: secretBindings,
    redactor,
    noticeDir: noticeDir(opts.dirs.state),
    logger,
    ...(opts.secretCacheMs !== undefined ? { cacheMs: opts.secretCacheMs } : {}),
    ...(opts.secretPollMs !== undefined ? { pollMs: opts.secretPollMs } : {}),
  });
  await secrets.preload(registry.connectors.flatMap(connectorSecrets));
  // SIEM sinks' credentials: bound to SIEM shipping alone, learned by the same redactor before anything is shipped.
  const siemNames = siemConfig?.sinks.flatMap(sinkSecrets) ?? [];
  const siemSecrets = new StoreResolver(secretStore, { bindings: { owner: new Map(siemNames.map((n) => [n, SIEM_SHIPPING])) }, redactor, noticeDir: noticeDir(opts.dirs.state), logger });
  await siemSecrets.preload(siemNames);
  let siem: Siem | undefined;
  // Egress out of sandboxes (agents with `run --egress`, confined connectors): every connection decided by the policy's egress rules.
  const egress = createEgressProxy({
    policy: () => policies.current(),
    audit,
    logger,
    rateLimiter: new RateLimiter(),
    // `ask` on egress waits on the same approvals as tool calls (gatehouse approvals).
    approvals,
    ...(opts.egressResolve ? { resolve: opts.egressResolve } : {}),
  });
  // The tool's hash is `toolHash` in the record: `hash` is the audit chain's own field.
  // Set once the gateway exists (pin events come from its catalog rebuilds, never before).
  let listing: Gateway | undefined;
  const pins = new PinStore({
    dir: join(opts.dirs.state, 'pins'),
    onEvent: ({ hash, ...e }) => {
      // What screening finds in the version the event is about is on record, whatever `screen:` does with it.
      const findings = e.tool !== undefined && e.event !== 'tool.removed' ? screenListed(listing, e.connector, e.tool) : [];
      void appendOrQueue(audit, redactor.redact({ ...e, ...(hash !== undefined ? { toolHash: hash } : {}), ...(findings.length > 0 ? { findings } : {}) }), logger);
    },
  });
  const gateway = new Gateway({
    registry,
    baseDir: dirname(opts.dirs.registry),
    secrets,
    authorize,
    hidden,
    audit,
    redact: (v) => counted(metrics, 'mcp', v, redactor.redact(v)),
    logger,
    ...(tracing ? { tracing } : {}),
    observe: metrics.toolCall,
    // Every stdio connector under gatehouse-sandbox (sandbox: off aside), its only way out this egress proxy.
    confine: connectorConfiner({ dirs: opts.dirs, egress }),
    // What an upstream tells the agent about its tools is pinned; a change waits for an admin (gatehouse tools).
    pins,
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
  });
  listing = gateway;
  // Model providers are registry entries too; a reload swaps them (see applyRegistryChange).
  const providers = { current: providerMap(registry) };
  const inference = new InferenceRouter({
    providers: () => providers.current,
    policy: () => policies.current(),
    secrets,
    redact: (t) => counted(metrics, 'llm', t, redactor.redactText(t)),
    redactValue: (v) => redactor.redact(v),
    longestSecret: () => redactor.longest,
    audit,
    budgets: new Budgets({ stateDir: opts.dirs.state, logger }),
    logger,
    ...(tracing ? { tracing } : {}),
  });
  known.tool = (n) => gateway.catalog.byName.has(n);
  known.provider = (n) => providers.current.has(n);
  // Each session compares its own visible list and sends list_changed only when that changed.
  policyChanged = () => gateway.emit('catalog');
  const sessions = new SessionManager({
    makeServer: (identity, id, busy, protocol) => createSessionServer(gateway, { agent: identity.agent, id, busy, protocol }),
    // MCP 2026-07-28 on the same /mcp, per request and without a session (README, "Protocol eras").
    stateless: new StatelessMcp(gateway),
    audit,
    logger,
    ...(tracing ? { tracing } : {}),
    ...(opts.maxSessions !== undefined ? { maxSessions: opts.maxSessions } : {}),
    ...(opts.maxSessionsPerAgent !== undefined ? { maxSessionsPerAgent: opts.maxSessionsPerAgent } : {}),
    ...(opts.sessionIdleMs !== undefined ? { idleMs: opts.sessionIdleMs } : {}),
  });
  const auditDir = join(opts.dirs.state, 'audit');
  const sandboxes = new SandboxSessions({
    stateDir: opts.dirs.state,
    sessions,
    audit,
    logger,
    llm: inference,
    egress,
    egressFor: (agent) => egressOffered(policies.current(), agent),
    // Grants "for this sandbox session" end with it.
    onClosed: (id) => approvals.sandboxEnded(id),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.http ? { http: opts.http } : {}),
  });
  // The console reads and decides through the admin API's own routes; its login URL names the TCP listener (set below).
  let consoleBase: string | undefined;
  const webConsole = createConsole({
    admin: async (req) => adminApi.fetch(req),
    gateway,
    policies,
    audit,
    auditDir,
    stateDir: opts.dirs.state,
    logger,
    baseUrl: () => consoleBase,
    ...(opts.consoleInsecure === true ? { allowInsecure: true } : {}),
  });
  consoleApproval = (ev) => webConsole.onApprovalEvent(ev);
  const adminApi = createAdminApi({ gateway, sessions, approvals, dirs: opts.dirs, pins, mounts: [
      { path: '/console', app: webConsole.adminRoutes },
      { path: '/sandbox', app: sandboxRoutes(sandboxes) },
      { path: '/tools', app: toolsRoutes(pins, gateway) },
      { path: '/audit', app: auditRoutes(auditDir) },
      { path: '/tokens', app: revocationRoutes(revocations, audit, logger) },
      { path: '/sessions', app: sessionStatusRoutes(sessions) },
      { path: '/siem', app: siemRoutes(() => siem) },
    ] });
  const controlApp = new Hono();
  controlApp.route('/admin/v1', adminApi);
  controlApp.get('/metrics', metricsHandler(metrics));
  metrics.setSources({
    sessions: () => sessions.size,
    sandboxes: () => sandboxes.list().length,
    pendingApprovals: () => {
      const pending = approvals.list();
      const egressWaits = pending.filter((a) => a.egress !== undefined).length;
      return { tool: pending.length - egressWaits, egress: egressWaits };
    },
    upstreams: () =>
      gateway.opts.registry.connectors
        .filter((c) => !isProvider(c))
        .map((c) => {
          const u = gateway.upstreamsByName().get(c.name);
          return { connector: c.name, state: u ? u.status.state : 'disabled', restarts: u?.restarts ?? 0 };
        }),
    audit: () => ({ backlog: audit.lateRecords, freeBytes: audit.headroom.freeBytes, headroomBytes: audit.headroom.headroomBytes, low: audit.headroom.low }),
    budgets: () => inference.budgetUse(),
  });
  // Listening on the control socket first also checks that no other gateway uses this state directory.
  const control = await listenControl(opts.dirs.state, controlApp);
  await audit.append({ event: 'registry.reload', ok: true, dir: opts.dirs.registry, connectors: registry.connectors.map((c) => ({ name: c.name, kind: c.kind, file: c.file })), ...unconfinedField(registry.connectors) });
  await audit.append({ event: 'gateway.start', version: VERSION, connectors: registry.connectors.map((c) => c.name), policyDigest: policies.current().digest, ...unconfinedField(registry.connectors) });
  // Reads the log behind the writer, never in a call's path: a sink that is down only grows its backlog.
  if (siemConfig !== undefined) {
    siem = startSiem(siemConfig, { stateDir: opts.dirs.state, logger, productVersion: VERSION, head: () => audit.seq, render: (t, where) => siemSecrets.render(t, { connector: SIEM_SHIPPING, where }) });
  }
  opts.onUpstreamsStarting?.(gateway);
  await gateway.start(opts.upstreamWaitMs);
  // Hot reload: a valid folder is applied without dropping sessions; an invalid one keeps the old, audited.
  const unwatchRegistry = registryStore.watch((ev) => {
    if (ev.ok) providers.current = providerMap(ev.registry);
    void applyRegistryChange(ev, { gateway, secrets, secretBindings, audit, logger });
  });

  const host = opts.host ?? '127.0.0.1';
  let tcp: { server: HttpServer; port: number } | undefined;
  let metricsServer: { server: HttpServer; url: string } | undefined;
  // One way down, for close() and for a start-up that fails after this point.
  let closed: Promise<void> | undefined;
  const shutdown = (graceMs: number): Promise<void> =>
    (closed ??= (async () => {
      tcp?.server.close();
      metricsServer?.server.close();
      metricsServer?.server.closeAllConnections();
      webConsole.close();
      unwatchRegistry();
      unwatchPolicies();
      policies.close();
      await control.close();
      await sandboxes.closeAll();
      // Connections waiting for an approval are withdrawn before the approvals close.
      egress.close();
      await approvals.close();
      await inference.close();
      await gateway.close(graceMs);
      secrets.close();
      unregisterRedactor();
      await sessions.closeAll();
      tcp?.server.closeAllConnections();
      await appendOrQueue(audit, { event: 'gateway.stop' }, logger);
      await audit.close();
      // The last spans get a moment to leave; a collector that is down does not hold the stop.
      await tracing?.close(1_000);
      // Last: what the log holds by now (gateway.stop included) gets a moment to leave.
      await siem?.close(1_000);
      siemSecrets.close();
    })());
  if (opts.tcp !== false) {
    try {
      tcp = await listenTcp(host, opts.port ?? 8931, (port) => {
        const app = createApp({
          sessions,
          authenticate: agentAuthenticator(verifier),
          // The listener's own addresses too: an IP literal is not a DNS-rebinding vector; names need --allowed-host.
          hosts: allowedHosts(port, [...(opts.allowedHosts ?? []), ...listenerAddresses(host, port)]),
          origins: allowedOrigins(port, opts.allowedOrigins),
          logger,
          protectedResource: true,
          llm: inference,
          ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
        });
        // The console: its own session cookie only (an agent's or admin's token opens nothing there).
        app.route('/', webConsole.app);
        // The admin API on TCP needs a token minted with --admin; agent tokens get 403.
        app.use('/admin/*', requireAdmin(verifier));
        app.use('/metrics', requireAdmin(verifier));
        app.get('/metrics', metricsHandler(metrics));
        app.route('/admin/v1', adminApi);
        return (req, env) => app.fetch(req, env as object);
      }, opts.http);
    } catch (e) {
      await shutdown(0);
      throw e;
    }
  }
  if (opts.metricsListen) {
    try {
      metricsServer = await listenMetrics(opts.metricsListen.host, opts.metricsListen.port, metrics);
    } catch (e) {
      await shutdown(0);
      throw e;
    }
  }
  const port = tcp?.port ?? 0;
  const urls = tcp ? listenerAddresses(host, port).map((a) => `http://${a}/mcp`) : [];
  const url = tcp ? (isWildcard(host) ? `http://127.0.0.1:${port}/mcp` : (urls[0] ?? '')) : '';
  if (url !== '') consoleBase = url.replace(/\/mcp$/, '');
  return {
    url,
    urls,
    port,
    host,
    gateway,
    keys,
    sessions,
    approvals,
    policies,
    inference,
    controlSocket: control.path,
    sandboxes,
    egress,
    revocations,
    audit,
    logger,
    siem,
    metrics,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    tracing,
    close: (graceMs = 10_000) => shutdown(graceMs),
  };
}

/** `after` is `before` redacted: counted when redaction replaced something (redact copies only what it changes). */
function counted<T>(metrics: GatewayMetrics, path: 'mcp' | 'llm', before: T, after: T): T {
  if (after !== before) metrics.redaction(path);
  return after;
}

/** An approval event as metrics: requested, or ended after how long it waited. */
function approvalMetric(metrics: GatewayMetrics, ev: ApprovalEvent): void {
  if (ev.type !== 'requested' && ev.type !== 'approved' && ev.type !== 'denied' && ev.type !== 'timed_out' && ev.type !== 'withdrawn') return;
  const kind = ev.approval.egress !== undefined ? 'egress' : 'tool';
  if (ev.type === 'requested') return metrics.approval(kind, 'requested');
  metrics.approval(kind, ev.type === 'timed_out' ? 'timeout' : ev.type, Date.now() - Date.parse(ev.approval.requestedAt));
}

/** Who SIEM sink credentials are bound to (their own resolver: no connector can receive them). */
const SIEM_SHIPPING = 'SIEM shipping';

/** Screening findings for the tool `connector` lists now under the upstream name `tool` (none when it lists no such tool). */
function screenListed(gateway: Gateway | undefined, connector: string, tool: string): Finding[] {
  const listed = gateway?.upstreamsByName().get(connector)?.tools.find((t) => t.name === tool);
  return listed === undefined ? [] : screenTool(listed);
}

function providerMap(r: Registry): Map<string, InferenceProvider> {
  return new Map(r.connectors.filter(isProvider).map((p) => [p.name, p]));
}

/**
 * A registry change, applied: secrets rebound and preloaded (so their values
 * are redacted before any use), upstreams swapped, audited. An invalid change
 * is only audited: the registry in force stays.
 */
async function applyRegistryChange(
  ev: RegistryChange,
  deps: { gateway: Gateway; secrets: StoreResolver; secretBindings: { owner: ReadonlyMap<string, string> }; audit: AuditSink; logger: Logger },
): Promise<void> {
  const { gateway, audit, logger } = deps;
  const dir = ev.registry.dir;
  if (!ev.ok) {
    logger.error({ error: ev.error }, 'registry reload rejected; the previous registry stays in force');
    await appendOrQueue(audit, { event: 'registry.reload', ok: false, dir, error: ev.error }, logger);
    return;
  }
  const next = ev.registry;
  deps.secretBindings.owner = bindSecrets(next.connectors).bindings.owner;
  await deps.secrets.preload(next.connectors.flatMap(connectorSecrets));
  const diff = await gateway.applyRegistry(next);
  logger.info(diff, 'registry reloaded');
  await appendOrQueue(audit, { event: 'registry.reload', ok: true, dir, connectors: next.connectors.map((c) => ({ name: c.name, kind: c.kind, file: c.file })), ...diff, ...unconfinedField(next.connectors) }, logger);
}

