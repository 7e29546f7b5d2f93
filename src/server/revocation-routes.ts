import { Hono } from 'hono';
import { z } from 'zod';
import { appendOrQueue } from '../audit/append-or-queue.js';
import type { AuditSink } from '../audit/types.js';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { adminBody } from './json-body.js';
import type { RevocationList } from './revocations.js';

const RevokeBody = z.union([z.strictObject({ jti: z.string() }), z.strictObject({ agent: z.string() })]);

/**
 * Admin routes for token revocation (`gatehouse token revoke` goes here when a
 * gateway runs, so the list has one writer and the next request sees it).
 */
export function revocationRoutes(revocations: RevocationList, audit: AuditSink, logger: Logger): Hono {
  const r = new Hono();
  r.post('/revoke', async (c) => {
    const body = await adminBody(c.req, RevokeBody, 'body must be {"jti": ID} or {"agent": NAME}');
    const revoked = revocations.revoke(body);
    logger.info(revoked, 'token revoked');
    const kept = await appendOrQueue(audit, { event: 'token.revoked', ...revoked, via: 'gateway' }, logger);
    if (kept.state !== 'written') {
      const late = kept.state === 'queued' ? 'is kept and written when the log recovers' : 'could not be written';
      throw new GatehouseError('AUDIT_UNAVAILABLE', `the revocation is in force, but its audit record ${late}: ${errorMessage(kept.error)}`);
    }
    return c.json({ revoked });
  });
  return r;
}
