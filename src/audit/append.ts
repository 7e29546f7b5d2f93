import { join } from 'node:path';
import { GatehouseError, isGatehouseError } from '../errors.js';
import { sendOverSocket, socketPath } from './socket.js';
import type { AuditEvent } from './types.js';
import { AuditLog, type AuditLogOptions } from './writer.js';

/**
 * Appends one record from a process that is not the gateway (e.g. the CLI's
 * `secret set`), whether or not a gateway is running:
 *
 * 1. If a gateway holds the log, it serves `<state>/audit/writer.sock`: the
 *    record is sent there and the gateway appends it to its chain.
 * 2. Otherwise this process takes the writer lock (`writer.lock`), opens the
 *    log itself (continuing the chain), appends, seals it with a checkpoint
 *    and releases the lock.
 *
 * Races (a gateway starting in between) are retried a few times. Resolves
 * with the record's seq once it is durable; rejects with AUDIT_UNAVAILABLE.
 */
export async function appendAuditRecord(stateDir: string, event: AuditEvent, opts: Omit<AuditLogOptions, 'dir' | 'listen'> = {}): Promise<{ seq: number }> {
  const dir = join(stateDir, 'audit');
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await sendOverSocket(socketPath(dir), event);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e instanceof GatehouseError ? e : new GatehouseError('AUDIT_UNAVAILABLE', `cannot reach the gateway's audit socket: ${String(e)}`);
    }
    try {
      const log = await AuditLog.open({ ...opts, dir });
      try {
        return await log.appendRecord(event);
      } finally {
        await log.close();
      }
    } catch (e) {
      // Busy: a gateway (or another CLI) took the lock between our two tries.
      if (!(isGatehouseError(e, 'AUDIT_UNAVAILABLE') && e.details?.busy === true)) throw e;
      last = e;
      await new Promise((r) => setTimeout(r, 25 + attempt * 25));
    }
  }
  throw last ?? new GatehouseError('AUDIT_UNAVAILABLE', 'cannot append to the audit log');
}
