import type { AuditEvent, AuditSink } from '../audit/types.js';

/**
 * Records of calls that had already reached their upstream when the audit log
 * stopped accepting writes (disk full, I/O error). The agent was refused the
 * result (AUDIT_UNAVAILABLE), but the upstream did act: the record is kept and
 * appended as soon as the log is writable again, so nothing that was executed
 * goes unaudited. Bounded by the calls in flight at the moment of failure:
 * new calls are refused before they are forwarded.
 */
interface Queue {
  records: AuditEvent[];
  timer: NodeJS.Timeout | undefined;
  draining: boolean;
}

const queues = new WeakMap<AuditSink, Queue>();
const RETRY_MS = 200;

export function appendWhenWritable(audit: AuditSink, record: AuditEvent): void {
  let q = queues.get(audit);
  if (!q) {
    q = { records: [], timer: undefined, draining: false };
    queues.set(audit, q);
  }
  q.records.push(record);
  if (q.timer === undefined) {
    const queue = q;
    q.timer = setInterval(() => void drain(audit, queue), RETRY_MS);
    q.timer.unref();
  }
}

/** How many records wait for the log (for status and tests). */
export function pendingLateRecords(audit: AuditSink): number {
  return queues.get(audit)?.records.length ?? 0;
}

async function drain(audit: AuditSink, q: Queue): Promise<void> {
  if (q.draining) return;
  q.draining = true;
  try {
    for (let next = q.records[0]; next !== undefined; next = q.records[0]) {
      audit.assertWritable();
      await audit.append(next);
      q.records.shift();
    }
    clearInterval(q.timer);
    q.timer = undefined;
  } catch {
    // Still not writable: the next tick tries again.
  } finally {
    q.draining = false;
  }
}

/** Tries once more to append what is waiting (the gateway calls this before it closes the log). */
export async function flushLateRecords(audit: AuditSink): Promise<void> {
  const q = queues.get(audit);
  if (!q || q.records.length === 0) return;
  while (q.draining) await new Promise((r) => setTimeout(r, 10));
  await drain(audit, q);
}
