import { closeSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { GatehouseError } from '../errors.js';
import type { AuditEvent, AuditSink } from './types.js';

/** Minimal durable JSON-lines audit sink: one line per event, fdatasync before resolving. */
export class JsonlAudit implements AuditSink {
  private fd: number;
  private broken: string | undefined;
  private seq = 0;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.fd = openSync(file, 'a', 0o600);
  }

  assertWritable(): void {
    if (this.broken !== undefined) throw new GatehouseError('AUDIT_UNAVAILABLE', `the audit log cannot be written (${this.broken}); calls are refused until it can`);
  }

  async append(e: AuditEvent): Promise<void> {
    this.assertWritable();
    const line = JSON.stringify({ seq: ++this.seq, time: new Date().toISOString(), ...e }) + '\n';
    try {
      writeSync(this.fd, line);
      fdatasyncSync(this.fd);
    } catch (err) {
      this.broken = (err as NodeJS.ErrnoException).code ?? String(err);
      this.assertWritable();
    }
  }

  async close(): Promise<void> {
    closeSync(this.fd);
  }
}
