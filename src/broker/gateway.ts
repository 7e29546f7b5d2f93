import { EventEmitter } from 'node:events';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import type { Registry } from '../registry/load.js';
import { connectorSecrets, isProvider, type Connector, type ToolConnector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { Upstream, type UpstreamStatus } from '../upstreams/upstream.js';
import { SchemaChecker } from './args.js';
import type { ConfineStdio } from '../upstreams/stdio-transport.js';
import type { PinStore } from '../tools/pins.js';
import type { Tracing } from '../telemetry/traces.js';
import { errorMessage } from '../errors.js';
import { screenTool } from '../tools/screen.js';
import type { Authorize, Hidden } from './authorize.js';
import { buildCatalog, type Catalog, type CatalogProblem } from './catalog.js';
import type { ConnectorState } from './not-ready.js';
import { createPassthrough } from './passthrough.js';
import { handleToolCall, type CallRequest, type PipelineDeps } from './pipeline.js';

export interface GatewayOptions {
  registry: Registry;
  /** Relative stdio paths resolve against this directory. */
  baseDir: string;
  secrets: SecretResolver;
  authorize: Authorize;
  hidden: Hidden;
  audit: AuditSink;
  redact: <T>(value: T) => T;
  logger: Logger;
  backoffMs?: number;
  /** Runs stdio connectors under the sandbox launcher (see Upstream). */
  confine?: ConfineStdio;
  /** Tool pinning (src/tools/pins.ts): what each ready connector lists is admitted here before the agent sees it. */
  pins?: PinStore;
  /** Traces (src/telemetry/traces.ts): each tools/call's spans; absent when tracing is off. */
  tracing?: Tracing;
  /** Metrics: told of each call's outcome record (PipelineDeps.observe). */
  observe?: PipelineDeps['observe'];
}

/** What a registry reload changed, by connector name. */
export interface RegistryDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/** Same definition (every key, in load order), so its upstream can keep running. */
function sameConnector(a: Connector, b: Connector): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface ConnectorReport {
  name: string;
  kind: Connector['kind'];
  file: string;
  status: UpstreamStatus | { state: 'disabled' };
  /** The MCP revision spoken with the upstream, once ready (2026-07-28 where it speaks it). */
  protocol?: string;
  tools: number;
  secrets: string[];
  problems: CatalogProblem[];
}

/**
 * The broker: upstreams shared by every session, the agent-facing catalog,
 * and the call pipeline. Knows nothing of HTTP.
 */
export class Gateway extends EventEmitter<{ catalog: []; closing: [] }> {
  readonly opts: GatewayOptions;
  private readonly upstreams = new Map<string, Upstream>();
  private _catalog: Catalog = buildCatalog([]);
  /**
   * One argument checker per connector, for the tool list it was made for:
   * a new list (a refresh, a restart) gets a new checker, and the old one's
   * compiled validators go with the old list.
   */
  private checkers = new Map<string, { tools: readonly Tool[]; checker: SchemaChecker }>();
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing = false;
  private readonly deps: PipelineDeps;
  private readonly serverMessages: ReturnType<typeof createPassthrough>;
  /** Registry reloads, one after the other. */
  private applying: Promise<unknown> = Promise.resolve();

  constructor(opts: GatewayOptions) {
    super();
    // One 'catalog' listener per open session (up to maxSessions): not a leak.
    this.setMaxListeners(0);
    this.opts = opts;
    // Upstreams' sampling/elicitation requests and log messages, to the agent whose call they belong to.
    this.serverMessages = createPassthrough({ audit: opts.audit, redact: opts.redact, logger: opts.logger });
    for (const c of toolConnectors(opts.registry)) if (c.enabled) this.upstreams.set(c.name, this.makeUpstream(c));
    this.deps = {
      catalog: () => this._catalog,
      upstream: (name) => this.upstreams.get(name),
      // Always present for a catalog entry (both change in rebuildCatalog); a fresh one otherwise.
      schemaChecker: (name) => this.checkers.get(name)?.checker ?? new SchemaChecker(),
      authorize: opts.authorize,
      hidden: opts.hidden,
      connectors: () => this.connectorStates(),
      audit: opts.audit,
      redact: opts.redact,
      logger: opts.logger,
      ...(opts.observe ? { observe: opts.observe } : {}),
    };
  }

  get catalog(): Catalog {
    return this._catalog;
  }

  private makeUpstream(c: ToolConnector): Upstream {
    const u: Upstream = new Upstream({
      connector: c,
      baseDir: this.opts.baseDir,
      secrets: this.opts.secrets,
      logger: this.opts.logger,
      // A replaced or removed upstream's late news must not touch the catalog.
      onToolsChanged: () => {
        if (this.upstreams.get(c.name) === u) this.rebuildCatalog();
      },
      serverMessages: this.serverMessages,
      ...(this.opts.confine ? { confine: this.opts.confine } : {}),
      ...(this.opts.backoffMs !== undefined ? { backoffMs: this.opts.backoffMs } : {}),
    });
    return u;
  }

  /**
   * Swaps in a new (already validated) registry without dropping sessions:
   * unchanged connectors keep their running upstream; removed ones stop and
   * their tools leave the catalog at once (sessions hear list_changed);
   * added and changed ones start (a changed one restarts with its new
   * definition). Resolves once the old upstreams stopped; new ones start in
   * the background and join the catalog when ready.
   */
  applyRegistry(next: Registry): Promise<RegistryDiff> {
    const run = this.applying.then(() => this.swapRegistry(next));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async swapRegistry(next: Registry): Promise<RegistryDiff> {
    const diff: RegistryDiff = { added: [], removed: [], changed: [] };
    if (this.closing) return diff;
    const prev = new Map(toolConnectors(this.opts.registry).map((c) => [c.name, c]));
    const nextNames = new Set(toolConnectors(next).map((c) => c.name));
    for (const c of toolConnectors(next)) {
      const old = prev.get(c.name);
      if (old === undefined) diff.added.push(c.name);
      else if (!sameConnector(old, c)) diff.changed.push(c.name);
    }
    for (const name of prev.keys()) if (!nextNames.has(name)) diff.removed.push(name);
    const stopping: Upstream[] = [];
    for (const name of [...diff.removed, ...diff.changed]) {
      const u = this.upstreams.get(name);
      if (u) stopping.push(u);
      this.upstreams.delete(name);
    }
    const starting: Upstream[] = [];
    for (const c of toolConnectors(next)) {
      if (!c.enabled || !(diff.added.includes(c.name) || diff.changed.includes(c.name))) continue;
      const u = this.makeUpstream(c);
      this.upstreams.set(c.name, u);
      starting.push(u);
    }
    this.opts.registry = next;
    // Any change counts, a disabled connector's too: its namespace is reserved (see rebuildCatalog).
    if (diff.added.length > 0 || diff.removed.length > 0 || diff.changed.length > 0) this.rebuildCatalog();
    await Promise.all(stopping.map((u) => u.stop()));
    for (const u of starting) void u.start();
    return diff;
  }

  /** Starts every upstream; waits for them at most `waitMs` (a dead one never blocks the gateway). */
  async start(waitMs = 15_000): Promise<void> {
    const all = Promise.all([...this.upstreams.values()].map((u) => u.start()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** The running upstreams, by connector name (what each lists now, before pinning). */
  upstreamsByName(): ReadonlyMap<string, Upstream> {
    return this.upstreams;
  }

  /** After an admin approved or re-pinned tools: the catalog is built again from the pins. */
  refreshCatalog(): void {
    this.admittedCache = new WeakMap();
    this.lastAdmitted = new WeakMap();
    this.rebuildCatalog();
  }

  /** The last admitted list per upstream listing (same array in, same array out: schema checkers are kept). */
  private admittedCache = new WeakMap<readonly Tool[], readonly Tool[]>();
  /** Per upstream, the list the pins last admitted (served while it restarts; a replaced upstream starts with none). */
  private lastAdmitted = new WeakMap<Upstream, readonly Tool[]>();

  /**
   * What a connector lists, as its pins admit it: a changed or new tool in
   * strict mode (or one screening blocks) is left out until approved. Only a
   * ready upstream's list is a listing (a restarting one lists nothing, which
   * is not every tool removed). A pin store that cannot be written serves
   * nothing of that connector (fail closed).
   */
  private admitted(u: Upstream): readonly Tool[] {
    const pins = this.opts.pins;
    if (pins === undefined || u.connector.pin === 'off') return u.tools;
    // Restarting or failed: its last listing may hold a quarantined tool; what the pins last admitted stands.
    if (u.status.state !== 'ready') return this.lastAdmitted.get(u) ?? [];
    const cached = this.admittedCache.get(u.tools);
    if (cached !== undefined) return cached;
    const c = u.connector;
    try {
      const served = pins.admit(c.name, u.tools.map((t) => this.opts.redact(t)), {
        mode: c.pin,
        ...(c.screen === 'block' ? { blocked: (t: Tool) => screenTool(t).map((f) => `${f.kind} in ${f.where}: ${f.excerpt}`) } : {}),
      });
      this.admittedCache.set(u.tools, served);
      this.lastAdmitted.set(u, served);
      return served;
    } catch (e) {
      this.opts.logger.error({ connector: c.name, err: errorMessage(e) }, 'tool pins cannot be checked or saved: none of its tools is served');
      return [];
    }
  }

  private rebuildCatalog(): void {
    const sources = [...this.upstreams.values()].map((u) => ({
      connector: u.connector.name,
      prefix: u.connector.prefix ?? u.connector.name,
      filter: u.connector.tools,
      tools: this.admitted(u),
    }));
    const checkers = new Map<string, { tools: readonly Tool[]; checker: SchemaChecker }>();
    for (const s of sources) {
      const prev = this.checkers.get(s.connector);
      checkers.set(s.connector, prev?.tools === s.tools ? prev : { tools: s.tools, checker: new SchemaChecker() });
    }
    this.checkers = checkers;
    // Every registered connector's namespace, ready, disabled or not yet started: a prefix-less one can't take its names meanwhile.
    const reserved = toolConnectors(this.opts.registry).map((c) => ({ connector: c.name, prefix: c.prefix ?? c.name }));
    this._catalog = buildCatalog(sources, this.opts.redact, reserved);
    for (const p of this._catalog.problems) this.opts.logger.warn(p, 'tool not exposed');
    this.emit('catalog');
  }

  /** Each registered tool connector's namespace and state, for telling a call why its connector serves nothing. */
  private connectorStates(): ConnectorState[] {
    return toolConnectors(this.opts.registry).map((c) => {
      const u = this.upstreams.get(c.name);
      return { connector: c.name, prefix: c.prefix ?? c.name, status: u ? u.status : { state: 'disabled' as const }, listed: u ? u.tools.length : 0 };
    });
  }

  /** Argument checkers alive and the validators they hold (bounded by the connectors' current tool lists). */
  schemaCheckers(): { checkers: number; validators: number } {
    let validators = 0;
    for (const c of this.checkers.values()) validators += c.checker.size;
    return { checkers: this.checkers.size, validators };
  }

  report(): ConnectorReport[] {
    return toolConnectors(this.opts.registry).map((c) => {
      const u = this.upstreams.get(c.name);
      return {
        name: c.name,
        kind: c.kind,
        file: c.file,
        // An upstream's failure text may carry anything: redact it like every other output.
        status: u ? this.opts.redact(u.status) : { state: 'disabled' as const },
        ...(u?.protocol !== undefined ? { protocol: u.protocol } : {}),
        tools: this._catalog.sorted.filter((e) => e.connector === c.name).length,
        secrets: connectorSecrets(c),
        problems: this._catalog.problems.filter((p) => p.connector === c.name),
      };
    });
  }

  /** Runs one tools/call through the pipeline; tracked so shutdown can let it finish. */
  async callTool(req: CallRequest) {
    this.inFlight++;
    try {
      return await handleToolCall(this.deps, req);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Waits for in-flight calls (at most `graceMs`), then stops the upstreams. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    // Calls parked waiting for an agent's input (2026-07-28) end now rather than hold the drain.
    this.emit('closing');
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => (this.drained = r)),
        new Promise<void>((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
    }
    await Promise.all([...this.upstreams.values()].map((u) => u.stop()));
    // The upstreams are gone: the last counts of refused requests go to the audit before it closes.
    await this.serverMessages.close();
  }
}

/** The connectors that serve tools (model providers are served by src/inference/). */
function toolConnectors(r: Registry): ToolConnector[] {
  return r.connectors.filter((c): c is ToolConnector => !isProvider(c));
}
