import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { AuditEvent, AuditSink, KeptRecord } from './types.js';

/**
 * The one rule for the record of something already done (a session opened or
 * closed, a reload applied, a revocation in force, a request refused): the
 * deed is not undone because the log failed, and the record is not dropped.
 * It is appended; if the log cannot take it now, the writer keeps it in its
 * late queue and writes it once the log recovers. Either way is logged once,
 * here. Never rejects: the caller decides what else to do from the answer
 * (e.g. tell the admin that the record is late).
 *
 * Where nothing was done yet, do not use this: append and refuse the call
 * when the append fails.
 *
 * `lazy`: no answer waits for the record (the model call's stream ended, the
 * egress connection closed): it rides with the log's next write instead of
 * starting one, so the next call's intent does not queue behind it.
 */
export async function appendOrQueue(audit: AuditSink, e: AuditEvent, logger: Logger, opts: { lazy?: boolean } = {}): Promise<KeptRecord> {
  let kept: KeptRecord;
  try {
    kept = audit.appendOrQueue ? await audit.appendOrQueue(e, opts) : await audit.append(e).then(() => ({ state: 'written' as const }));
  } catch (error) {
    kept = { state: 'lost', error };
  }
  if (kept.state === 'queued') logger.warn({ event: e.event, err: errorMessage(kept.error) }, 'audit: record kept until the log can be written again');
  else if (kept.state === 'lost') logger.error({ event: e.event, err: errorMessage(kept.error) }, 'audit: record could not be written');
  return kept;
}
