import { EventEmitter } from 'node:events';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import type { Registry } from '../registry/load.js';
import { connectorSecrets, type Connector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { Upstream, type UpstreamStatus } from '../upstreams/upstream.js';
import type { Authorize, Hidden } from './authorize.js';
import { buildCatalog, type Catalog, type CatalogProblem } from './catalog.js';
import { createPassthrough } from './passthrough.js';
import { flushLateRecords } from './late-audit.js';
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
}

export interface ConnectorReport {
  name: string;
  kind: Connector['kind'];
  file: string;
  status: UpstreamStatus | { state: 'disabled' };
  tools: number;
  secrets: string[];
  problems: CatalogProblem[];
}

/**
 * The broker: upstreams shared by every session, the agent-facing catalog,
 * and the call pipeline. Knows nothing of HTTP.
 */
export class Gateway extends EventEmitter<{ catalog: [] }> {
  readonly opts: GatewayOptions;
  private readonly upstreams = new Map<string, Upstream>();
  private _catalog: Catalog = buildCatalog([]);
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing = false;
  private readonly deps: PipelineDeps;

  constructor(opts: GatewayOptions) {
    super();
    // One 'catalog' listener per open session (up to maxSessions): not a leak.
    this.setMaxListeners(0);
    this.opts = opts;
    // Upstreams' sampling/elicitation requests and log messages, to the agent whose call they belong to.
    const serverMessages = createPassthrough({ audit: opts.audit, redact: opts.redact, logger: opts.logger });
    for (const c of opts.registry.connectors) {
      if (!c.enabled) continue;
      this.upstreams.set(
        c.name,
        new Upstream({
          connector: c,
          baseDir: opts.baseDir,
          secrets: opts.secrets,
          logger: opts.logger,
          onToolsChanged: () => this.rebuildCatalog(),
          serverMessages,
          ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
        }),
      );
    }
    this.deps = {
      catalog: () => this._catalog,
      upstream: (name) => this.upstreams.get(name),
      authorize: opts.authorize,
      audit: opts.audit,
      redact: opts.redact,
      logger: opts.logger,
    };
  }

  get catalog(): Catalog {
    return this._catalog;
  }

  /** Starts every upstream; waits for them at most `waitMs` (a dead one never blocks the gateway). */
  async start(waitMs = 15_000): Promise<void> {
    const all = Promise.all([...this.upstreams.values()].map((u) => u.start()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  private rebuildCatalog(): void {
    this._catalog = buildCatalog(
      [...this.upstreams.values()].map((u) => ({
        connector: u.connector.name,
        prefix: u.connector.prefix ?? u.connector.name,
        filter: u.connector.tools,
        tools: u.tools,
      })),
    );
    for (const p of this._catalog.problems) this.opts.logger.warn(p, 'tool not exposed');
    this.emit('catalog');
  }

  report(): ConnectorReport[] {
    return this.opts.registry.connectors.map((c) => {
      const u = this.upstreams.get(c.name);
      return {
        name: c.name,
        kind: c.kind,
        file: c.file,
        // An upstream's failure text may carry anything: redact it like every other output.
        status: u ? this.opts.redact(u.status) : { state: 'disabled' as const },
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
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => (this.drained = r)),
        new Promise<void>((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
    }
    await Promise.all([...this.upstreams.values()].map((u) => u.stop()));
    await flushLateRecords(this.opts.audit);
  }
}
