/** One audit record as handed to the writer (the writer adds seq, time and hash). */
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
