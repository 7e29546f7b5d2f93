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
  /** Throws GatehouseError('AUDIT_UNAVAILABLE') when records cannot currently be written. */
  assertWritable(): void;
  close(): Promise<void>;
}

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
  'tools/list',
  'tools/call',
  'approval.requested',
  'approval.approved',
  'approval.denied',
  'approval.timeout',
  'approval.cancelled',
  'approval.refused',
  'grant.used',
  'grant.expired',
  'policy.reload',
  'registry.reload',
  'secret.set',
  'secret.delete',
  'sandbox.opened',
  'sandbox.closed',
  'sampling.request',
  'elicitation.request',
  'audit.checkpoint',
  'audit.recovered',
  'audit.retention',
] as const;
