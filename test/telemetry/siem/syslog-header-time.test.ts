/**
 * The syslog TIMESTAMP is the record's `time`. A log changed on disk can
 * hold a time that still parses as a date but has spaces in it ("Mon, 06
 * Jan 2025 10:02:11 GMT"): written as is, it would shift every header field
 * after it (HOSTNAME, APP-NAME, PROCID, MSGID), so a receiver files the
 * message under a host and app the attacker chose.
 */
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/types.js';
import { encodeRecord } from '../../../src/telemetry/siem/encode.js';
import { formatSyslog } from '../../../src/telemetry/siem/sinks/syslog.js';

const header = { facility: 13, hostname: 'gw1', appName: 'gatehouse', procId: '42', sdId: 'gatehouse@32473' };

describe('syslog header from a record time with spaces', () => {
  it.each(['Mon, 06 Jan 2025 10:02:11 GMT', '2025-01-06 10:02:11', 'January 6, 2025 evilhost evilapp 1 evil'])('a record time %j cannot shift HOSTNAME, APP-NAME, PROCID or MSGID', (time) => {
    const r = { v: 1, seq: 7, time, event: 'tools/call', prev: '0'.repeat(64), hash: 'ab'.repeat(32), agent: 'a' } as AuditRecord;
    const msg = formatSyslog(encodeRecord(r, '', 'ocsf', '1'), header, 65536, 'ocsf');
    const [pri, ts, host, app, proc, msgid, sd] = msg.split(' ');
    expect(pri).toMatch(/^<\d+>1$/);
    // RFC 5424 §6.2.3: FULL-DATE "T" FULL-TIME, or NILVALUE.
    expect(ts).toMatch(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})|-)$/);
    expect([host, app, proc, msgid]).toEqual(['gw1', 'gatehouse', '42', 'tools/call']);
    expect(sd?.startsWith('[gatehouse@32473')).toBe(true);
  });
});
