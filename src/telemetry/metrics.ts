/**
 * The gateway's Prometheus metrics (text format 0.0.4, rendered by prom-client,
 * which is loaded at the first scrape: a gateway nobody scrapes never loads it).
 *
 * Where the numbers come from:
 * - tool calls: the pipeline tells `toolCall()` each call's outcome record, with exact timings;
 * - model calls, tokens, egress decisions: the audit writer tells `audit.record()` each record it appends;
 *   audit write latency and batch sizes: `audit.batch()`, after each write + fdatasync;
 * - approvals: `approval()`, from the approval events (wiring in src/app/gateway.ts);
 * - gauges (sessions, sandboxes, pending approvals, upstream states and restarts, budget use, audit
 *   backlog and disk headroom): read at scrape time from `setSources()`.
 *
 * The call path only adds to numbers in cells found by a few map lookups
 * (labels.ts: Children); label strings are built and formatted only when
 * Prometheus scrapes. Every label an agent can influence is bounded
 * (labels.ts: BoundedLabel): unknown tool and provider names share
 * `_unknown`, names past a cap share `_other`.
 *
 * Hook for other parts — the SIEM shipper (src/telemetry/siem/) publishes its backlog with
 *
 *     const unregister = registerBacklogSource('syslog', () => recordsNotYetAcknowledged);
 *
 * and every gateway's /metrics then shows `gatehouse_siem_backlog_records{sink="syslog"}`.
 * `read` is called at scrape time only; it must be cheap and must not throw (a throw reads as 0).
 */
import type { Metric, Registry } from 'prom-client';
import type { AuditObserver } from '../audit/writer.js';
import { VERSION } from '../config/paths.js';
import { BoundedLabel, Children, NONE, OTHER, oneOf, UNKNOWN } from './labels.js';

/** Backlog sources of every SIEM sink in this process, by sink name. */
const backlogSources = new Map<string, () => number>();

/**
 * Publishes the backlog (records not yet delivered) of SIEM sink `sink` as
 * `gatehouse_siem_backlog_records{sink}`. Returns the function that removes it.
 */
export function registerBacklogSource(sink: string, read: () => number): () => void {
  backlogSources.set(sink, read);
  return () => {
    if (backlogSources.get(sink) === read) backlogSources.delete(sink);
  };
}

/** What the gateway's parts report at scrape time. Each is optional: a missing one shows no series. */
export interface MetricSources {
  sessions?(): number;
  sandboxes?(): number;
  /** Approvals waiting for a human, tool calls and egress connections apart. */
  pendingApprovals?(): { tool: number; egress: number };
  upstreams?(): ReadonlyArray<{ connector: string; state: string; restarts: number }>;
  audit?(): { backlog: number; freeBytes: number; headroomBytes: number; low: boolean };
  /** Model budgets in their current window. */
  budgets?(): ReadonlyArray<{ provider: string; agent: string; kind: 'requests' | 'tokens'; used: number; capacity: number }>;
}

export interface MetricsOptions {
  /** Distinct agent names with their own label value (default 200); later ones share `_other`. */
  maxAgents?: number;
  /** Distinct tool names with their own label value (default 2000); only tools in the catalog qualify. */
  maxTools?: number;
  /** Distinct model names (default 100); only models of allowed calls qualify. */
  maxModels?: number;
  /** Whether a tool name is exposed by the catalog now (an agent's random name is not). */
  knownTool?: (name: string) => boolean;
  /** Whether a model provider is registered (the provider in /llm/<provider> is the agent's text). */
  knownProvider?: (name: string) => boolean;
  /** The process's own metrics (process_*, nodejs_heap_*) too (default true). */
  processMetrics?: boolean;
}

const SECONDS_CALL = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const SECONDS_MODEL = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const SECONDS_APPROVAL = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14_400, 86_400];
const SECONDS_AUDIT = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const BATCH_RECORDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const DECISIONS: ReadonlySet<string> = new Set(['allow', 'deny', 'ask']);
const CALL_OUTCOMES: ReadonlySet<string> = new Set(['ok', 'error', 'denied', 'timeout', 'rejected', 'cancelled']);
const MODEL_OUTCOMES: ReadonlySet<string> = new Set(['ok', 'provider_error', 'refused', 'cancelled', 'failed']);
/** Egress outcomes the gateway names (src/egress/); `error: <message>` (the message may be the upstream's) is `error`. */
const EGRESS_OUTCOMES: ReadonlySet<string> = new Set(['ok', 'closed', 'idle', 'error', 'denied', 'address-refused', 'rate-limited', 'timeout', 'client-gone', 'suppressed', 'connect-failed', 'unresolved']);
const TOKEN_FIELDS = [
  ['inputTokens', 'input'],
  ['outputTokens', 'output'],
  ['cacheReadTokens', 'cache_read'],
  ['cacheWriteTokens', 'cache_write'],
] as const;

type Labels = Record<string, string>;

function labelsOf(names: readonly string[], values: readonly string[]): Labels {
  const out: Labels = {};
  names.forEach((n, i) => (out[n] = values[i] as string));
  return out;
}

/** A counter whose cells are plain numbers; prom-client sees them only when scraped. */
class CellCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #cells: Array<{ labels: Labels; v: number }> = [];
  readonly children: Children<{ labels: Labels; v: number }>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    this.children = new Children((values) => {
      const cell = { labels: labelsOf(labelNames, values), v: 0 };
      this.#cells.push(cell);
      return cell;
    });
  }
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Labels; value: number }> }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#cells.map((c) => ({ labels: c.labels, value: c.v })) });
  }
}

interface HistogramCell {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram whose cells are plain arrays of bucket counts (cumulated when scraped). */
class CellHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #cells: HistogramCell[] = [];
  readonly children: Children<HistogramCell>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    this.children = new Children((values) => {
      const cell = { labels: labelsOf(labelNames, values), counts: new Array<number>(bounds.length).fill(0), sum: 0, count: 0 };
      this.#cells.push(cell);
      return cell;
    });
  }
  observe(cell: HistogramCell, v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) (cell.counts[i] as number)++;
    cell.sum += v;
    cell.count++;
  }
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const c of this.#cells) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += c.counts[i] as number;
        values.push({ labels: { ...c.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: `${this.name}_bucket` });
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

/** Reads a source at scrape time; a source that throws shows nothing rather than failing the scrape. */
function read<T>(f: (() => T) | undefined): T | undefined {
  if (f === undefined) return undefined;
  try {
    return f();
  } catch {
    return undefined;
  }
}

export class GatewayMetrics {
  /** Every metric, handed to a prom-client Registry at the first scrape (prom-client is not loaded before). */
  readonly #all: unknown[] = [];
  #registry: Promise<Registry> | undefined;
  readonly #agents: BoundedLabel;
  readonly #tools: BoundedLabel;
  readonly #models: BoundedLabel;
  readonly #providers = new BoundedLabel(200, UNKNOWN);
  readonly #connectors = new BoundedLabel(500);
  readonly #opts: MetricsOptions;
  #sources: MetricSources = {};

  readonly #calls = new CellCounter('gatehouse_tool_calls_total', 'Tool calls (tools/call) by agent, connector, tool, policy decision and outcome.', ['agent', 'connector', 'tool', 'decision', 'outcome']);
  readonly #callSeconds = new CellHistogram('gatehouse_tool_call_duration_seconds', 'Whole tool call as the gateway saw it, from the request to its outcome record.', ['connector'], SECONDS_CALL);
  readonly #gatewaySeconds = new CellHistogram('gatehouse_tool_call_gateway_seconds', 'Time a forwarded tool call spent in the gateway itself (whole call minus the upstream call).', ['connector'], SECONDS_CALL);
  readonly #upstreamSeconds = new CellHistogram('gatehouse_tool_call_upstream_seconds', 'Time a forwarded tool call spent in its upstream.', ['connector'], SECONDS_CALL);
  readonly #modelCalls = new CellCounter('gatehouse_model_calls_total', 'Model calls (/llm) by agent, provider, model and outcome.', ['agent', 'provider', 'model', 'outcome']);
  readonly #modelSeconds = new CellHistogram('gatehouse_model_call_duration_seconds', 'Whole model call, to the end of its answer.', ['provider'], SECONDS_MODEL);
  readonly #tokens = new CellCounter('gatehouse_model_tokens_total', 'Tokens the providers reported, by agent, provider and type (input, output, cache_read, cache_write).', ['agent', 'provider', 'type']);
  readonly #egress = new CellCounter('gatehouse_egress_decisions_total', 'Egress connections out of sandboxes by caller kind, policy decision and outcome.', ['caller', 'decision', 'outcome']);
  readonly #approvals = new CellCounter('gatehouse_approvals_total', 'Human approvals by kind (tool, egress) and how they ended (requested, approved, denied, timeout, withdrawn).', ['kind', 'outcome']);
  readonly #approvalSeconds = new CellHistogram('gatehouse_approval_wait_seconds', 'How long an approval waited for its answer.', ['kind', 'outcome'], SECONDS_APPROVAL);
  readonly #auditSeconds = new CellHistogram('gatehouse_audit_write_seconds', 'One audit batch: write and fdatasync.', [], SECONDS_AUDIT);
  readonly #auditBatch = new CellHistogram('gatehouse_audit_batch_records', 'Records made durable by one fdatasync (group commit).', [], BATCH_RECORDS);
  readonly #redactions = new CellCounter('gatehouse_redactions_total', 'Values in which a secret was found and redacted, by path (mcp: results, errors, records; llm: model traffic).', ['path']);

  constructor(opts: MetricsOptions = {}) {
    this.#opts = opts;
    this.#agents = new BoundedLabel(opts.maxAgents ?? 200);
    this.#tools = new BoundedLabel(opts.maxTools ?? 2000, UNKNOWN);
    this.#models = new BoundedLabel(opts.maxModels ?? 100, UNKNOWN);
    for (const m of [this.#calls, this.#callSeconds, this.#gatewaySeconds, this.#upstreamSeconds, this.#modelCalls, this.#modelSeconds, this.#tokens, this.#egress, this.#approvals, this.#approvalSeconds, this.#auditSeconds, this.#auditBatch, this.#redactions]) {
      this.#all.push(m);
    }
    this.#gauges();
    if (opts.processMetrics !== false) this.#all.push(...processMetrics());
  }

  /** What the parts report at scrape time (set once they exist). */
  setSources(sources: MetricSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** Prometheus text format 0.0.4 (prom-client's Registry.PROMETHEUS_CONTENT_TYPE). */
  get contentType(): string {
    return 'text/plain; version=0.0.4; charset=utf-8';
  }

  /** The text exposition (every series). */
  render(): Promise<string> {
    this.#registry ??= import('prom-client').then(({ Registry: R }) => {
      const registry = new R();
      for (const m of this.#all) registry.registerMetric(m as Metric);
      return registry;
    });
    return this.#registry.then((r) => r.metrics());
  }

  /**
   * One tool call's outcome record (src/broker/pipeline.ts), with its exact
   * durations in ms (`upstreamMs` when it was forwarded). Never throws.
   */
  readonly toolCall = (r: Readonly<Record<string, unknown>>, totalMs: number, upstreamMs: number | undefined): void => {
    try {
      const connector = this.#connectors.value(r.connector);
      const known = this.#opts.knownTool;
      const tool = typeof r.connector === 'string' ? this.#tools.value(r.tool, known) : UNKNOWN;
      this.#calls.children.get(this.#agents.value(r.agent), connector, tool, oneOf(r.decision, DECISIONS), oneOf(r.outcome, CALL_OUTCOMES)).v++;
      this.#callSeconds.observe(this.#callSeconds.children.get(connector), totalMs / 1000);
      if (upstreamMs !== undefined) {
        this.#upstreamSeconds.observe(this.#upstreamSeconds.children.get(connector), upstreamMs / 1000);
        this.#gatewaySeconds.observe(this.#gatewaySeconds.children.get(connector), Math.max(0, totalMs - upstreamMs) / 1000);
      }
    } catch {
      // Telemetry never fails a call.
    }
  };

  /** What the audit writer reports (AuditLogOptions.observe). Never throws. */
  readonly audit: AuditObserver = {
    record: (e) => {
      try {
        if (e.event === 'model.call') this.#modelCall(e);
        else if (e.event === 'egress') this.#egressRecord(e);
      } catch {
        // Telemetry never fails an append.
      }
    },
    batch: (records, _bytes, ms) => {
      this.#auditSeconds.observe(this.#auditSeconds.children.get(), ms / 1000);
      this.#auditBatch.observe(this.#auditBatch.children.get(), records);
    },
  };

  /** An approval event: requested, or ended after `waitedMs`. */
  approval(kind: 'tool' | 'egress', outcome: 'requested' | 'approved' | 'denied' | 'timeout' | 'withdrawn', waitedMs?: number): void {
    this.#approvals.children.get(kind, outcome).v++;
    if (waitedMs !== undefined && Number.isFinite(waitedMs)) this.#approvalSeconds.observe(this.#approvalSeconds.children.get(kind, outcome), Math.max(0, waitedMs) / 1000);
  }

  /** A value in which redaction replaced at least one secret. */
  redaction(path: 'mcp' | 'llm'): void {
    this.#redactions.children.get(path).v++;
  }

  #modelCall(e: Readonly<Record<string, unknown>>): void {
    const agent = this.#agents.value(e.agent);
    const provider = this.#providers.value(e.provider, this.#opts.knownProvider);
    // A model name is the agent's text: only calls the model list and policy allowed may name one, and a new
    // name only once the provider answered for it (a glob like `claude-*` lets made-up names through to a 404).
    const model = e.decision === 'allow' ? this.#models.value(e.model, () => e.outcome === 'ok') : UNKNOWN;
    this.#modelCalls.children.get(agent, provider, model, oneOf(e.outcome, MODEL_OUTCOMES)).v++;
    if (typeof e.durationMs === 'number') this.#modelSeconds.observe(this.#modelSeconds.children.get(provider), e.durationMs / 1000);
    for (const [field, type] of TOKEN_FIELDS) {
      const n = e[field];
      if (typeof n === 'number' && Number.isFinite(n) && n > 0) this.#tokens.children.get(agent, provider, type).v += n;
    }
  }

  #egressRecord(e: Readonly<Record<string, unknown>>): void {
    const caller = typeof e.agent === 'string' ? 'agent' : typeof e.connector === 'string' ? 'connector' : NONE;
    const outcome = typeof e.outcome === 'string' && e.outcome.startsWith('error:') ? 'error' : oneOf(e.outcome, EGRESS_OUTCOMES);
    // A folded run of refusals (src/egress/refusal-log.ts) counts each refusal it stands for.
    const n = outcome === 'suppressed' && typeof e.count === 'number' && Number.isFinite(e.count) ? e.count : 1;
    this.#egress.children.get(caller, oneOf(e.decision, DECISIONS), outcome).v += n;
  }

  /** Gauges (and counters kept elsewhere) read at scrape time. */
  #gauges(): void {
    const src = () => this.#sources;
    const connectors = this.#connectors;
    const agents = this.#agents;
    const providers = this.#providers;
    const knownProvider = this.#opts.knownProvider;
    const one = (v: number | undefined): Sample[] => (v === undefined ? [] : [{ labels: {}, value: v }]);
    const audit = () => read(src().audit);
    const metrics = [
      new ScrapeMetric('gatehouse_info', 'Always 1; the labels say which gateway this is.', 'gauge', () => [{ labels: { version: VERSION }, value: 1 }]),
      new ScrapeMetric('gatehouse_mcp_sessions', 'Open MCP sessions.', 'gauge', () => one(read(src().sessions))),
      new ScrapeMetric('gatehouse_sandbox_sessions', 'Open sandbox sessions (gatehouse run).', 'gauge', () => one(read(src().sandboxes))),
      new ScrapeMetric('gatehouse_audit_backlog_records', 'Records of executed calls waiting for the audit log to be writable again.', 'gauge', () => one(audit()?.backlog)),
      new ScrapeMetric('gatehouse_audit_disk_free_bytes', 'Free space on the audit filesystem, outside the reserve.', 'gauge', () => one(audit()?.freeBytes)),
      new ScrapeMetric('gatehouse_audit_headroom_bytes', 'The headroom kept for the audit log (serve --audit-headroom); below it new calls are refused.', 'gauge', () => one(audit()?.headroomBytes)),
      new ScrapeMetric('gatehouse_audit_headroom_low', '1 while the audit disk is below its headroom (new calls refused).', 'gauge', () => {
        const a = audit();
        return one(a === undefined ? undefined : a.low ? 1 : 0);
      }),
      new ScrapeMetric('gatehouse_approvals_pending', 'Approvals waiting for a human, by kind.', 'gauge', () => {
        const p = read(src().pendingApprovals);
        return p === undefined ? [] : [{ labels: { kind: 'tool' }, value: p.tool }, { labels: { kind: 'egress' }, value: p.egress }];
      }),
      new ScrapeMetric('gatehouse_upstream_state', 'Each connector upstream: 1 for its current state (starting, ready, not-ready, failed, stopped, disabled).', 'gauge', () =>
        (read(src().upstreams) ?? []).flatMap((u) => UPSTREAM_STATES.map((state) => ({ labels: { connector: connectors.value(u.connector), state }, value: u.state === state ? 1 : 0 }))),
      ),
      new ScrapeMetric('gatehouse_upstream_restarts_total', 'Restarts of each connector upstream after it failed or exited (since it was last (re)defined).', 'counter', () =>
        (read(src().upstreams) ?? []).map((u) => ({ labels: { connector: connectors.value(u.connector) }, value: u.restarts })),
      ),
      new ScrapeMetric('gatehouse_model_budget_used_ratio', 'Share of each model budget spent in its current window, by agent, provider and kind (requests, tokens).', 'gauge', () =>
        (read(src().budgets) ?? [])
          .filter((b) => b.capacity > 0)
          .map((b) => ({ labels: { agent: agents.value(b.agent), provider: providers.value(b.provider, knownProvider), kind: b.kind }, value: b.used / b.capacity })),
      ),
      new ScrapeMetric('gatehouse_siem_backlog_records', 'Audit records each SIEM sink has not delivered yet.', 'gauge', () => [...backlogSources].map(([sink, f]) => ({ labels: { sink: sink.slice(0, 64) }, value: read(f) ?? 0 }))),
    ];
    this.#all.push(...metrics);
  }
}

/**
 * The usual process metrics, read at scrape time. Not prom-client's
 * collectDefaultMetrics: its event-loop monitor wakes an idle gateway a
 * hundred times a second, and its GC observer runs on every collection.
 */
function processMetrics(): ScrapeMetric[] {
  const started = Date.now() / 1000 - process.uptime();
  const cpu = (f: (u: NodeJS.CpuUsage) => number) => () => [{ labels: {}, value: f(process.cpuUsage()) / 1e6 }];
  const mem = (f: (m: NodeJS.MemoryUsage) => number) => () => [{ labels: {}, value: f(process.memoryUsage()) }];
  return [
    new ScrapeMetric('process_cpu_user_seconds_total', 'User CPU time spent in seconds.', 'counter', cpu((u) => u.user)),
    new ScrapeMetric('process_cpu_system_seconds_total', 'System CPU time spent in seconds.', 'counter', cpu((u) => u.system)),
    new ScrapeMetric('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', cpu((u) => u.user + u.system)),
    new ScrapeMetric('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => [{ labels: {}, value: process.memoryUsage.rss() }]),
    new ScrapeMetric('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => [{ labels: {}, value: Math.round(started) }]),
    new ScrapeMetric('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', mem((m) => m.heapTotal)),
    new ScrapeMetric('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', mem((m) => m.heapUsed)),
    new ScrapeMetric('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', mem((m) => m.external)),
  ];
}

const UPSTREAM_STATES = ['starting', 'ready', 'not-ready', 'failed', 'stopped', 'disabled'];

interface Sample {
  labels: Labels;
  value: number;
}

/** A metric whose samples are read when Prometheus scrapes (a source that shows nothing renders no sample). */
class ScrapeMetric {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    private readonly samples: () => Sample[],
  ) {}
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() });
  }
}

export { OTHER, UNKNOWN };
