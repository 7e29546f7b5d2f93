/**
 * Audit records as OCSF events (Open Cybersecurity Schema Framework, schema
 * 1.6.0). Pure: one record in, one event out, nothing read or written.
 *
 *   tools/call, model.call, tools/list, admin actions → API Activity (6003)
 *   egress, egress.intent                              → Network Activity (4001)
 *   session.*, console.login*                          → Authentication (3002)
 *   tool.* (pins, quarantine, screening findings)      → Detection Finding (2004)
 *   gateway.start / gateway.stop                       → Application Lifecycle (6002)
 *
 * Field names are the schema's (events/*.json, objects/*.json of
 * ocsf/ocsf-schema at tag 1.6.0). `type_uid` = class_uid × 100 + activity_id.
 * Every record field that has no OCSF attribute goes to `unmapped` under
 * its own name, so nothing of the record is lost; `metadata.uid` is the
 * record's hash and `metadata.sequence` its seq, so a SIEM can check the chain.
 */
import type { AuditRecord } from '../../audit/types.js';

export const OCSF_VERSION = '1.6.0';

export type OcsfEvent = Record<string, unknown> & {
  class_uid: number;
  category_uid: number;
  activity_id: number;
  type_uid: number;
  severity_id: number;
  time: number;
  metadata: Record<string, unknown>;
};

interface ClassInfo {
  uid: number;
  name: string;
  category: number;
  categoryName: string;
}

export const OCSF_CLASSES = {
  detection_finding: { uid: 2004, name: 'Detection Finding', category: 2, categoryName: 'Findings' },
  authentication: { uid: 3002, name: 'Authentication', category: 3, categoryName: 'Identity & Access Management' },
  network_activity: { uid: 4001, name: 'Network Activity', category: 4, categoryName: 'Network Activity' },
  application_lifecycle: { uid: 6002, name: 'Application Lifecycle', category: 6, categoryName: 'Application Activity' },
  api_activity: { uid: 6003, name: 'API Activity', category: 6, categoryName: 'Application Activity' },
} as const satisfies Record<string, ClassInfo>;

export type OcsfClass = keyof typeof OCSF_CLASSES;

/** The class a record's event maps to. */
export function ocsfClassOf(event: string): OcsfClass {
  if (event.startsWith('tool.')) return 'detection_finding';
  if (event === 'egress' || event === 'egress.intent') return 'network_activity';
  if (event.startsWith('session.') || event.startsWith('console.login') || event === 'console.logout') return 'authentication';
  if (event === 'gateway.start' || event === 'gateway.stop') return 'application_lifecycle';
  return 'api_activity';
}

/** severity_id (base event) */
const SEVERITY = ['Unknown', 'Informational', 'Low', 'Medium', 'High', 'Critical', 'Fatal'] as const;
const INFO = 1;
const LOW = 2;
const MEDIUM = 3;
const HIGH = 4;

/** status_id (base event): 0 Unknown, 1 Success, 2 Failure, 99 Other. */
const STATUS: Record<number, string> = { 0: 'Unknown', 1: 'Success', 2: 'Failure', 99: 'Other' };

/** Call outcomes (tools/call, model.call) that are not a success. */
const OK_OUTCOMES = new Set(['ok']);

export interface OcsfOptions {
  /** metadata.product.version (the gateway's version). */
  productVersion: string;
}

/** Takes fields out of a record; what is left over becomes `unmapped`. */
class Fields {
  readonly #r: Record<string, unknown>;
  /** Keys taken (a set, not `delete`: deleting keys makes every later access slow). */
  readonly #taken = new Set<string>();
  constructor(r: AuditRecord) {
    this.#r = r;
  }
  /** The value, removed from what is left. */
  take(k: string): unknown {
    this.#taken.add(k);
    return this.#r[k];
  }
  str(k: string): string | undefined {
    const v = this.#r[k];
    if (typeof v !== 'string' || this.#taken.has(k)) return undefined;
    this.#taken.add(k);
    return v;
  }
  num(k: string): number | undefined {
    const v = this.#r[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || this.#taken.has(k)) return undefined;
    this.#taken.add(k);
    return v;
  }
  peek(k: string): unknown {
    return this.#taken.has(k) ? undefined : this.#r[k];
  }
  /** What was not taken, or undefined when nothing is left. */
  rest(): Record<string, unknown> | undefined {
    let out: Record<string, unknown> | undefined;
    for (const k of Object.keys(this.#r)) {
      if (this.#taken.has(k) || this.#r[k] === undefined) continue;
      (out ??= {})[k] = this.#r[k];
    }
    return out;
  }
}

/**
 * `parts` merged into one new object, in order, without undefined values or
 * empty objects (an absent field is absent, not null). Built key by key:
 * deleting keys, or spreading parts of many shapes, is several times slower.
 */
function merge(parts: ReadonlyArray<object | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    for (const k in part) {
      const v = (part as Record<string, unknown>)[k];
      if (v === undefined || (v !== null && typeof v === 'object' && !Array.isArray(v) && isEmpty(v))) continue;
      out[k] = v;
    }
  }
  return out;
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function clean<T extends object>(o: T): T {
  return merge([o]) as T;
}

/** The event from its parts. */
function finished(...parts: Array<Record<string, unknown> | undefined>): OcsfEvent {
  return merge(parts) as OcsfEvent;
}

const ms = (n: number | undefined) => (n === undefined ? undefined : Math.max(0, Math.round(n)));

/** The gateway's agent (a service account in OCSF terms). */
function agentUser(name: string): Record<string, unknown> {
  return { name, type_id: 4, type: 'Service' };
}

/** Who did it: the agent (and its MCP session), else an admin (`by`), else the gateway itself. */
function actorOf(agent: string | undefined, session: string | undefined, by: string | undefined): Record<string, unknown> {
  if (agent !== undefined) return clean({ user: agentUser(agent), session: session !== undefined ? { uid: session } : undefined });
  if (by !== undefined) return { user: { name: by, type_id: 0, type: 'Unknown' } };
  return { app_name: 'Gatehouse' };
}

/** Where the request came from: the agent's sandbox or the agent; the gateway for its own events. */
function sourceOf(agent: string | undefined, sandbox: string | undefined, connector?: string): Record<string, unknown> {
  if (sandbox !== undefined) return clean({ uid: sandbox, name: agent ?? connector, type: 'Sandbox' });
  if (agent !== undefined) return { name: agent };
  if (connector !== undefined) return { name: connector, svc_name: connector };
  return { name: 'gatehouse' };
}

/** Policy decision → the security_control profile's action and disposition (taken from the record only when it is one of ours). */
function decisionFields(f: Fields): Record<string, unknown> | undefined {
  const decision = f.peek('decision');
  if (decision !== 'allow' && decision !== 'deny' && decision !== 'ask') return undefined;
  f.take('decision');
  const out: Record<string, unknown> =
    decision === 'allow'
      ? { action_id: 1, action: 'Allowed', disposition_id: 1, disposition: 'Allowed' }
      : decision === 'deny'
        ? { action_id: 2, action: 'Denied', disposition_id: 2, disposition: 'Blocked' }
        : { action_id: 99, action: 'Ask', disposition_id: 99, disposition: 'Requires approval' };
  const rule = f.str('rule');
  if (rule !== undefined && rule !== '') out.policy = { uid: rule, name: rule };
  return out;
}

interface Status {
  id: number;
  code?: string | undefined;
  detail?: string | undefined;
}

/** An `error` field: `{code, message}` (calls) or a string (reloads). */
function errorOf(f: Fields): { code?: string | undefined; message?: string | undefined } {
  const e = f.peek('error');
  if (typeof e === 'string') {
    f.take('error');
    return { message: e };
  }
  if (e !== null && typeof e === 'object' && !Array.isArray(e)) {
    const o = e as Record<string, unknown>;
    const code = typeof o.code === 'string' ? o.code : undefined;
    const message = typeof o.message === 'string' ? o.message : undefined;
    if (code !== undefined || message !== undefined) {
      // Taken only when code and message are all it holds: anything else it carries stays, in unmapped.
      if (Object.keys(o).every((k) => (k === 'code' && code !== undefined) || (k === 'message' && message !== undefined))) f.take('error');
      return clean({ code, message });
    }
  }
  return {};
}

/** A call's or action's status from `outcome` (calls) or `ok` (reloads); an intent alone is Unknown. */
function statusOf(f: Fields, intent: boolean): Status {
  const err = errorOf(f);
  // A reason beside an error message stays in unmapped (status_detail holds one text).
  const reason = err.message === undefined ? f.str('reason') : undefined;
  const detail = err.message ?? reason;
  const base = (id: number, code?: string): Status => clean({ id, code: code ?? err.code, detail });
  if (intent) return base(0);
  const outcome = f.peek('outcome');
  if (typeof outcome === 'string') {
    // status_code is the error's code when there is one; the outcome (error, timeout, cancelled…) then stays in unmapped.
    if (OK_OUTCOMES.has(outcome) || err.code === undefined) f.take('outcome');
    return OK_OUTCOMES.has(outcome) ? base(1) : base(2, err.code ?? outcome);
  }
  const ok = f.peek('ok');
  if (typeof ok === 'boolean') {
    f.take('ok');
    return base(ok ? 1 : 2);
  }
  return base(err.code !== undefined || err.message !== undefined ? 2 : 1);
}

function statusAttrs(s: Status): Record<string, unknown> {
  return clean({ status_id: s.id, status: STATUS[s.id], status_code: s.code, status_detail: s.detail });
}

function classify(cls: ClassInfo, activityId: number, activityName: string): Record<string, unknown> {
  return {
    category_uid: cls.category,
    category_name: cls.categoryName,
    class_uid: cls.uid,
    class_name: cls.name,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: cls.uid * 100 + activityId,
    type_name: `${cls.name}: ${activityName}`,
  };
}

/** The event's metadata, and what every event carries. */
function envelope(r: AuditRecord, f: Fields, opts: OcsfOptions, severity: number, profiles: string[], correlation: string | undefined): Record<string, unknown> {
  for (const k of ['v', 'seq', 'time', 'hash', 'event']) f.take(k);
  return {
    time: Date.parse(r.time),
    severity_id: severity,
    severity: SEVERITY[severity] ?? 'Other',
    metadata: clean({
      version: OCSF_VERSION,
      product: { name: 'Gatehouse', vendor_name: 'Gatehouse', version: opts.productVersion },
      uid: r.hash,
      sequence: r.seq,
      log_name: 'gatehouse-audit',
      log_version: `gatehouse-audit/${String(r.v)}`,
      event_code: r.event,
      original_time: r.time,
      correlation_uid: correlation,
      profiles: profiles.length > 0 ? profiles : undefined,
    }),
  };
}

/** API Activity: activity per event (1 Create, 2 Read, 3 Update, 4 Delete, 99 Other with the event's own verb). */
const API_ACTIVITY: Record<string, [number, string]> = {
  'tools/call': [99, 'Invoke'],
  'tools/call.intent': [99, 'Invoke'],
  'model.call': [99, 'Invoke'],
  'model.call.intent': [99, 'Invoke'],
  'tools/list': [2, 'Read'],
  'sampling.request': [99, 'Request'],
  'elicitation.request': [99, 'Request'],
  'secret.set': [3, 'Update'],
  'secret.delete': [4, 'Delete'],
  'policy.reload': [3, 'Update'],
  'registry.reload': [3, 'Update'],
  'approval.requested': [1, 'Create'],
  'approval.approved': [3, 'Update'],
  'approval.denied': [3, 'Update'],
  'approval.timeout': [3, 'Update'],
  'approval.withdrawn': [3, 'Update'],
  'approval.refused': [99, 'Refuse'],
  'approvals.state': [2, 'Read'],
  'grant.used': [99, 'Use'],
  'grant.expired': [4, 'Delete'],
  'token.revoked': [3, 'Update'],
  'token.revocations': [2, 'Read'],
  'sandbox.opened': [1, 'Create'],
  'sandbox.closed': [4, 'Delete'],
  'audit.checkpoint': [1, 'Create'],
  'audit.retention': [4, 'Delete'],
  'audit.recovered': [3, 'Update'],
  'audit.headroom': [99, 'Other'],
};

function apiActivity(r: AuditRecord, f: Fields, opts: OcsfOptions): OcsfEvent {
  const event = r.event;
  const model = event === 'model.call' || event === 'model.call.intent';
  const method = model ? f.str('method') : undefined;
  let [activityId, activityName] = API_ACTIVITY[event] ?? [99, 'Other'];
  if (model && method === 'GET') [activityId, activityName] = [2, 'Read'];
  const intent = event.endsWith('.intent');
  const agent = f.str('agent');
  // The actor is the agent (with its session) when there is one, else the admin (`by`): the other stays in unmapped.
  const session = agent !== undefined ? f.str('session') : undefined;
  const sandbox = f.str('sandbox');
  const by = agent === undefined ? f.str('by') : undefined;
  const call = f.str('call');
  const connector = f.str('connector');
  const provider = model ? f.str('provider') : undefined;
  const tool = f.str('tool');
  const decision = decisionFields(f);
  const status = statusOf(f, intent);
  const upstreamTool = f.str('upstreamTool');
  const modelName = model ? f.str('model') : undefined;
  const responseModel = model ? f.str('responseModel') : undefined;
  const path = model ? f.str('path') : undefined;
  const httpStatus = model ? f.num('status') : undefined;
  const args = f.take('args');
  const resources: Record<string, unknown>[] = [];
  if (tool !== undefined) resources.push(clean({ name: tool, uid: upstreamTool, type: 'MCP Tool', group: connector !== undefined ? { name: connector } : undefined }));
  if (modelName !== undefined || responseModel !== undefined) resources.push(clean({ name: modelName ?? responseModel, uid: responseModel, type: 'AI Model' }));
  const service = provider ?? connector;
  const severity = status.id === 2 ? (decision?.action_id === 2 ? MEDIUM : LOW) : INFO;
  const profiles = decision ? ['security_control'] : [];
  const duration = ms(f.num('durationMs'));
  return finished(
    classify(OCSF_CLASSES.api_activity, activityId, activityName),
    envelope(r, f, opts, severity, profiles, call),
    {
      message: [event, tool ?? modelName, agent !== undefined ? `by ${agent}` : undefined].filter((s) => s !== undefined).join(' '),
    },
    statusAttrs(status),
    {
      actor: actorOf(agent, session, by),
      src_endpoint: sourceOf(agent, sandbox),
      dst_endpoint: service !== undefined ? { name: service, svc_name: service } : undefined,
      api: clean({
        operation: model && method !== undefined && path !== undefined ? `${method} ${path}` : event,
        service: service !== undefined ? { name: service } : undefined,
        // request.uid is required: the call id, else the record's own hash.
        request: clean({ uid: call ?? r.hash, data: args !== undefined ? { args } : undefined }),
        response: clean({ code: httpStatus, error: status.id === 2 ? status.code : undefined, error_message: status.id === 2 ? status.detail : undefined }),
      }),
      resources: resources.length > 0 ? resources : undefined,
      duration,
    },
    decision,
    {
      unmapped: f.rest(),
    },
  );
}

/** Egress outcomes that are refusals (no connection was made). */
const REFUSED = new Set(['denied', 'address-refused', 'rate-limited', 'timeout', 'client-gone', 'suppressed']);
const FAILED = new Set(['connect-failed', 'unresolved']);

function networkActivity(r: AuditRecord, f: Fields, opts: OcsfOptions): OcsfEvent {
  const intent = r.event === 'egress.intent';
  const agent = f.str('agent');
  const connector = f.str('connector');
  const sandbox = f.str('sandbox');
  const conn = f.str('conn');
  const host = f.str('host');
  const port = f.num('port');
  const address = f.str('address');
  const addresses = f.peek('addresses');
  const path = f.str('path');
  const bytesUp = f.num('bytesUp');
  const bytesDown = f.num('bytesDown');
  const outcome = f.peek('outcome');
  const decision = decisionFields(f);
  let activity: [number, string];
  let status: Status;
  if (intent) {
    activity = [1, 'Open'];
    status = statusOf(f, true);
  } else {
    const traffic = bytesUp !== undefined || bytesDown !== undefined;
    const o = typeof outcome === 'string' ? outcome : '';
    activity = traffic ? [2, 'Close'] : REFUSED.has(o) ? [5, 'Refuse'] : FAILED.has(o) ? [4, 'Fail'] : [99, 'Other'];
    // A tunnel that ends ("closed", "idle") did what was asked; an error while it ran, or any refusal, is a failure.
    const good = o === 'closed' || o === 'idle' || o === 'ok';
    status = statusOf(f, false);
    // status_code says how it ended (closed, idle, ok): a success, but not one and the same.
    if (good) status = clean({ ...status, id: 1, code: o });
  }
  const dstIp = address ?? (Array.isArray(addresses) && typeof addresses[0] === 'string' ? addresses[0] : undefined);
  const severity = status.id === 2 ? (decision?.action_id === 2 || outcome === 'address-refused' ? MEDIUM : LOW) : INFO;
  const profiles = [...(decision ? ['security_control'] : []), 'host'];
  const total = (bytesUp ?? 0) + (bytesDown ?? 0);
  return finished(
    classify(OCSF_CLASSES.network_activity, activity[0], activity[1]),
    envelope(r, f, opts, severity, profiles, conn),
    {
      message: `egress ${host ?? '?'}:${port ?? '?'}${agent !== undefined ? ` by ${agent}` : connector !== undefined ? ` by connector ${connector}` : ''}`,
    },
    statusAttrs(status),
    {
      // The host profile's actor: the agent (or the connector's process) on this host.
      actor: agent !== undefined ? { user: agentUser(agent) } : connector !== undefined ? { app_name: connector } : { app_name: 'Gatehouse' },
      src_endpoint: sourceOf(agent, sandbox, connector),
      dst_endpoint: clean({ hostname: host, port, ip: dstIp }),
      connection_info: clean({ uid: conn, direction_id: 2, direction: 'Outbound', protocol_name: 'tcp' }),
      traffic: bytesUp !== undefined || bytesDown !== undefined ? clean({ bytes_out: bytesUp, bytes_in: bytesDown, bytes: total }) : undefined,
      url: path !== undefined ? clean({ hostname: host, port, path }) : undefined,
      duration: ms(f.num('durationMs')),
    },
    decision,
    {
      unmapped: f.rest(),
    },
  );
}

function authentication(r: AuditRecord, f: Fields, opts: OcsfOptions): OcsfEvent {
  const event = r.event;
  const agent = f.str('agent');
  const session = f.str('session');
  const sandbox = f.str('sandbox');
  const via = f.str('via');
  const consoleSession = f.str('consoleSession');
  const admin = event.startsWith('console.');
  const activity: [number, string] =
    event === 'session.opened' || event === 'session.refused' || event === 'console.login'
      ? [1, 'Logon']
      : event === 'session.closed' || event === 'console.logout'
        ? [2, 'Logoff']
        : [99, event === 'console.login_issued' ? 'Login link issued' : 'Other'];
  let status = statusOf(f, false);
  if (event === 'session.refused') status = { id: 2, code: 'SESSION_LIMIT', detail: `session limit reached (${String(f.peek('scope') ?? 'gateway')})` };
  const protocol = via === 'token' ? 'Bearer token (JWT)' : via === 'sandbox' ? 'Sandbox session socket' : admin ? 'Console login link' : undefined;
  return finished(
    classify(OCSF_CLASSES.authentication, activity[0], activity[1]),
    envelope(r, f, opts, status.id === 2 ? MEDIUM : INFO, [], session ?? consoleSession),
    {
      message: `${event}${agent !== undefined ? ` ${agent}` : ''}`,
    },
    statusAttrs(status),
    {
      user: admin ? { name: 'admin', type_id: 2, type: 'Admin' } : agentUser(agent ?? 'unknown'),
      actor: admin ? { user: { name: 'admin', type_id: 2, type: 'Admin' } } : actorOf(agent, session, undefined),
      session: clean({ uid: session ?? consoleSession }),
      service: { name: admin ? 'Gatehouse console' : 'Gatehouse MCP' },
      auth_protocol_id: protocol !== undefined ? 99 : undefined,
      auth_protocol: protocol,
      logon_type_id: via === 'token' ? 3 : via === 'sandbox' ? 99 : undefined,
      logon_type: via === 'token' ? 'Network' : via === 'sandbox' ? 'Sandbox' : undefined,
      src_endpoint: sourceOf(agent, sandbox),
      dst_endpoint: { svc_name: admin ? 'console' : 'mcp', name: 'gatehouse' },
      unmapped: f.rest(),
    },
  );
}

/** Finding activity and how severe, per pin event. */
const FINDING: Record<string, { activity: [number, string]; severity: number; status: [number, string]; alert: boolean; title: string }> = {
  'tool.quarantined': { activity: [1, 'Create'], severity: MEDIUM, status: [1, 'New'], alert: true, title: 'Tool withheld until an admin approves it' },
  'tool.changed': { activity: [1, 'Create'], severity: HIGH, status: [1, 'New'], alert: true, title: 'Tool description or schema changed since it was pinned' },
  'tool.pins_rejected': { activity: [1, 'Create'], severity: HIGH, status: [1, 'New'], alert: true, title: 'Tool pin file rejected' },
  'tool.approved': { activity: [3, 'Close'], severity: INFO, status: [4, 'Resolved'], alert: false, title: 'Tool approved by an admin' },
  'tool.pinned': { activity: [1, 'Create'], severity: INFO, status: [4, 'Resolved'], alert: false, title: 'Tool pinned on first sight' },
  'tool.removed': { activity: [2, 'Update'], severity: INFO, status: [5, 'Archived'], alert: false, title: 'Tool no longer listed' },
};

function detectionFinding(r: AuditRecord, f: Fields, opts: OcsfOptions): OcsfEvent {
  const spec = FINDING[r.event] ?? { activity: [2, 'Update'] as [number, string], severity: INFO, status: [99, 'Other'] as [number, string], alert: false, title: r.event };
  const connector = f.str('connector');
  const tool = f.str('tool');
  const toolHash = f.str('toolHash');
  const previousHash = f.str('previousHash');
  const by = f.str('by');
  const reasons = Array.isArray(f.peek('reasons')) ? (f.take('reasons') as unknown[]).filter((x): x is string => typeof x === 'string') : undefined;
  const findings = Array.isArray(f.peek('findings')) ? (f.take('findings') as unknown[]) : [];
  // A screening finding raises the severity: the tool's text tries to instruct the model or hide something.
  const severity = findings.length > 0 && spec.alert ? Math.min(HIGH, spec.severity + 1) : spec.severity;
  const subject = `${connector ?? '?'}/${tool ?? '*'}`;
  return finished(
    classify(OCSF_CLASSES.detection_finding, spec.activity[0], spec.activity[1]),
    envelope(r, f, opts, severity, by !== undefined ? ['host'] : [], undefined),
    {
      message: `${spec.title}: ${subject}`,
      status_id: spec.status[0],
      status: spec.status[1],
      finding_info: clean({
        // One finding per tool version: its approval (Close) names the same uid as its quarantine (Create).
        uid: `${subject}@${toolHash ?? previousHash ?? r.hash}`,
        title: spec.title,
        desc: reasons !== undefined && reasons.length > 0 ? reasons.join('; ') : undefined,
        types: [r.event],
        created_time: Date.parse(r.time),
      }),
      is_alert: spec.alert,
      resources: tool !== undefined || connector !== undefined ? [clean({ name: tool ?? connector, uid: toolHash, type: 'MCP Tool', group: connector !== undefined ? { name: connector } : undefined })] : undefined,
      evidences: findings.length > 0 ? findings.map((data) => ({ data })) : undefined,
      // The host profile's actor: the admin who approved.
      actor: by !== undefined ? { user: { name: by, type_id: 2, type: 'Admin' } } : undefined,
      unmapped: previousHash !== undefined ? { ...f.rest(), previousHash } : f.rest(),
    },
  );
}

function applicationLifecycle(r: AuditRecord, f: Fields, opts: OcsfOptions): OcsfEvent {
  const start = r.event === 'gateway.start';
  const version = f.str('version') ?? opts.productVersion;
  return finished(
    classify(OCSF_CLASSES.application_lifecycle, start ? 3 : 4, start ? 'Start' : 'Stop'),
    envelope(r, f, opts, INFO, [], undefined),
    {
      message: start ? 'gateway started' : 'gateway stopped',
    },
    statusAttrs({ id: 1 }),
    {
      app: { name: 'Gatehouse', vendor_name: 'Gatehouse', version },
      unmapped: f.rest(),
    },
  );
}

/** One audit record as one OCSF event. */
export function toOcsf(r: AuditRecord, opts: OcsfOptions): OcsfEvent {
  const f = new Fields(r);
  switch (ocsfClassOf(r.event)) {
    case 'detection_finding':
      return detectionFinding(r, f, opts);
    case 'network_activity':
      return networkActivity(r, f, opts);
    case 'authentication':
      return authentication(r, f, opts);
    case 'application_lifecycle':
      return applicationLifecycle(r, f, opts);
    case 'api_activity':
      return apiActivity(r, f, opts);
  }
}
