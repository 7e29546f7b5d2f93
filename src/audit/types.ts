/** One audit record as handed to the writer (the writer adds seq, time, prev and hash). */
export interface AuditEvent {
  event: string;
  agent?: string;
  session?: string;
  [field: string]: unknown;
}

export interface AuditSink {
  /** Resolves once the record is durable; rejects with GatehouseError('AUDIT_UNAVAILABLE') otherwise. */
  append(e: AuditEvent): Promise<void>;
  /**
   * Throws GatehouseError('AUDIT_UNAVAILABLE') when a new call must not start:
   * records cannot currently be written, or the audit disk is below its headroom.
   */
  assertWritable(): void;
  /**
   * For the record of something that already happened (an upstream acted):
   * never refused for headroom, and if the log cannot take it now it is kept
   * and written once the log recovers (marked `delivered: false`). Still
   * rejects in that case, so the caller does not hand back an unaudited result.
   */
  appendOutcome?(e: AuditEvent): Promise<void>;
  /** appendOutcome's rule, told instead of thrown (see appendOrQueue in append-or-queue.ts); `lazy`: written with the next batch. */
  appendOrQueue?(e: AuditEvent, opts?: { lazy?: boolean }): Promise<KeptRecord>;
  close(): Promise<void>;
}

/**
 * What became of the record of something already done: written, queued (the
 * log failed; the writer keeps it and writes it after it recovers, marked
 * `delivered: false`) or lost (a closed log), with why.
 */
export type KeptRecord = { state: 'written' } | { state: 'queued' | 'lost'; error: unknown };

/** A record as stored: one JSON object per line. */
export interface AuditRecord {
  /** Line format version; always 1. Not hashed (a constant; verify rejects any other value). */
  v: 1;
  /** Gap-free across restarts and files, starting at 1. */
  seq: number;
  /** ISO 8601 UTC, milliseconds. */
  time: string;
  event: string;
  agent?: string;
  session?: string;
  /** Hash of the previous record (64 zeros for seq 1). */
  prev: string;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of this record without `v` and `hash`. */
  hash: string;
  [field: string]: unknown;
}

/** Event names the gateway writes (any other name is accepted too). */
export const AUDIT_EVENTS = [
  'gateway.start',
  'gateway.stop',
  'session.opened',
  'session.closed',
  'session.refused',
  'tools/list',
  'tools/call.intent',
  'tools/call',
  'approval.requested',
  'approval.approved',
  'approval.denied',
  'approval.timeout',
  'approval.withdrawn',
  'approvals.state',
  'approval.refused',
  'grant.used',
  'grant.expired',
  'policy.reload',
  'registry.reload',
  'token.revoked',
  'token.revocations',
  'secret.set',
  'secret.delete',
  'sandbox.opened',
  'sandbox.closed',
  'sampling.request',
  'elicitation.request',
  'audit.checkpoint',
  'audit.recovered',
  'audit.retention',
  'audit.headroom',
  'egress.intent',
  'egress',
  'tool.pinned',
  'tool.quarantined',
  'tool.changed',
  'tool.approved',
  'tool.removed',
  'tool.pins_rejected',
  'console.login_issued',
  'console.login',
  'console.logout',
] as const;

/**
 * Written durably before a call is forwarded (after policy allowed it); its
 * `tools/call` outcome record carries the same `call` id. An intent without
 * an outcome is a call the upstream may have run while the gateway stopped.
 */
export const CALL_INTENT_EVENT = 'tools/call.intent';
