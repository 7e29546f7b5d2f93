/**
 * What a sink sends for one audit record: the OCSF event (`ocsf`) or the
 * record exactly as stored (`jsonl`, whose hash still verifies), as JSON
 * text in plain ASCII (every other character as a \u escape: the same value,
 * and no byte a line-oriented receiver could mistake for framing).
 */
import type { AuditRecord } from '../../audit/types.js';
import { toOcsf, type OcsfEvent } from './ocsf.js';

export const FORMATS = ['ocsf', 'jsonl'] as const;
export type Format = (typeof FORMATS)[number];

export interface Encoded {
  seq: number;
  hash: string;
  /** The record's time, ISO 8601 UTC. */
  time: string;
  /** The audit event name. */
  event: string;
  /** The record, for the fields a sink puts in its own envelope. */
  record: AuditRecord;
  /** What is sent: the OCSF event or the record. */
  body: Record<string, unknown>;
  /** `body` as ASCII JSON. */
  json: string;
  /** Set when `body` was cut to fit a sink's size limit. */
  truncated?: { bytes: number };
  /** What the reader found wrong with this record or just before it (reader.ts); said in `body` too. */
  problems?: string[];
}

/**
 * Where a marked event says what is wrong: OCSF `unmapped["gatehouse.integrity"]`
 * (and the label `gatehouse.integrity` in `metadata.labels`, kept when the
 * event is cut), or a field of that name beside the record's own (a
 * verifier drops it before hashing: it is the shipper's, not the record's).
 */
export const INTEGRITY = 'gatehouse.integrity';

/** JSON with every character outside printable ASCII escaped (RFC 8259 §7). */
export function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function encodeRecord(record: AuditRecord, line: string, format: Format, productVersion: string, problems?: readonly string[]): Encoded {
  let body: Record<string, unknown> = format === 'ocsf' ? toOcsf(record, { productVersion }) : record;
  const marked = problems !== undefined && problems.length > 0;
  if (marked) body = format === 'ocsf' ? markOcsf(body, problems) : { ...record, [INTEGRITY]: problems };
  // The stored line is already JSON: reused as is when it is ASCII (the usual case), so jsonl ships the exact bytes.
  const json = !marked && format === 'jsonl' && /^[\x20-\x7e]*$/.test(line) ? line : asciiJson(body);
  return { seq: record.seq, hash: record.hash, time: record.time, event: record.event, record, body, json, ...(marked ? { problems: [...problems] } : {}) };
}

function markOcsf(e: Record<string, unknown>, problems: readonly string[]): Record<string, unknown> {
  const metadata = e.metadata as Record<string, unknown>;
  const labels = Array.isArray(metadata.labels) ? (metadata.labels as unknown[]) : [];
  return { ...e, metadata: { ...metadata, labels: [...labels, INTEGRITY] }, unmapped: { ...(e.unmapped as Record<string, unknown> | undefined), [INTEGRITY]: problems } };
}

/** Fields of an OCSF event kept when it must be cut to fit (the classification, metadata and the required attributes). */
const OCSF_KEEP = new Set([
  'category_uid', 'category_name', 'class_uid', 'class_name', 'activity_id', 'activity_name', 'type_uid', 'type_name',
  'time', 'severity_id', 'severity', 'metadata', 'message', 'status_id', 'status', 'status_code',
  'actor', 'api', 'src_endpoint', 'dst_endpoint', 'user', 'session', 'service', 'finding_info', 'app',
  'action_id', 'action', 'disposition_id', 'disposition', 'policy', 'connection_info',
]);
/** Fields of a stored record kept when it must be cut (see MINIMAL_FIELDS in audit/bound.ts). */
const RECORD_KEEP = new Set(['v', 'seq', 'time', 'event', 'prev', 'hash', 'call', 'agent', 'session', 'tool', 'connector', 'outcome', 'decision', 'rule', 'host', 'port', INTEGRITY]);

/** Every string in `v` cut to `max` characters (with "…"). */
function cutStrings(v: unknown, max: number): unknown {
  if (typeof v === 'string') return v.length > max ? `${v.slice(0, max)}…` : v;
  if (Array.isArray(v)) return v.slice(0, 16).map((x) => cutStrings(x, max));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).slice(0, 64).map(([k, x]) => [k.slice(0, max), cutStrings(x, max)]));
  return v;
}

/**
 * `e` made to fit in `maxBytes` of JSON: the bulky parts (arguments,
 * unmapped fields, evidence) dropped, strings cut, and the cut marked —
 * OCSF `metadata.is_truncated` / `untruncated_size`, or `truncated` and
 * `bytes` on a record (whose hash then no longer verifies, which is why it
 * is marked). Never dropped: a record too big for a sink still arrives, cut.
 * `force`: cut even when it fits (a receiver refused it whole).
 */
export function fit(e: Encoded, maxBytes: number, format: Format, force = false): Encoded {
  const size = Buffer.byteLength(e.json);
  if (size <= maxBytes && !force) return e;
  const keep = format === 'ocsf' ? OCSF_KEEP : RECORD_KEEP;
  for (const max of [1024, 128, 16]) {
    const small = cutStrings(Object.fromEntries(Object.entries(e.body).filter(([k]) => keep.has(k))), max) as Record<string, unknown>;
    if (format === 'ocsf') {
      const ocsf = small as Partial<OcsfEvent>;
      const api = ocsf.api as Record<string, unknown> | undefined;
      if (api?.request !== undefined) api.request = { uid: (api.request as { uid?: unknown }).uid };
      ocsf.metadata = { ...(e.body.metadata as Record<string, unknown>), is_truncated: true, untruncated_size: size };
    } else {
      small.hash = e.hash;
      small.truncated = true;
      small.bytes = size;
    }
    const json = asciiJson(small);
    if (Buffer.byteLength(json) <= maxBytes) return { ...e, body: small, json, truncated: { bytes: size } };
  }
  const label = e.problems !== undefined ? { labels: [INTEGRITY] } : {};
  const minimal =
    format === 'ocsf'
      ? { class_uid: e.body.class_uid, type_uid: e.body.type_uid, time: e.body.time, metadata: { uid: e.hash, sequence: e.seq, is_truncated: true, untruncated_size: size, ...label } }
      : { seq: e.seq, hash: e.hash, time: e.time, truncated: true, bytes: size, ...(e.problems !== undefined ? { [INTEGRITY]: true } : {}) };
  return { ...e, body: minimal, json: asciiJson(minimal), truncated: { bytes: size } };
}
