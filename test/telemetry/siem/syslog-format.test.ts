/**
 * RFC 5424 message building and RFC 6587 octet-counting framing, pure.
 */
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/types.js';
import { encodeRecord } from '../../../src/telemetry/siem/encode.js';
import { formatSyslog, frame, printable, sdEscape, syslogSeverity } from '../../../src/telemetry/siem/sinks/syslog.js';

const header = { facility: 13, hostname: 'gw1', appName: 'gatehouse', procId: '42', sdId: 'gatehouse@32473' };
const rec = (fields: Record<string, unknown>): AuditRecord => ({ v: 1, seq: 7, time: '2025-01-06T10:02:11.482Z', event: 'tools/call', prev: '0'.repeat(64), hash: 'ab'.repeat(32), ...fields }) as AuditRecord;

/** PARAM-VALUE decoding as RFC 5424 §6.3.3 says a receiver does it. */
function sdUnescape(v: string): string {
  return v.replace(/\\(["\\\]])/g, '$1');
}

describe('RFC 5424 structured data escaping (§6.3.3)', () => {
  it.each([
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['a]b', 'a\\]b'],
    ['"] [x@1 y="z"]', '\\"\\] [x@1 y=\\"z\\"\\]'],
  ])('escapes %j as %j and decodes back to it', (raw, escaped) => {
    expect(sdEscape(raw)).toBe(escaped);
    expect(sdUnescape(sdEscape(raw))).toBe(raw);
  });

  it('no unescaped quote or "]" can remain to end the value or the element early', () => {
    const hostile = '\\"]\\\\"]]]""\\';
    const v = sdEscape(hostile);
    expect(v.replace(/\\["\\\]]/g, '')).not.toMatch(/["\]\\]/);
  });

  it('control characters, C1 and line separators are written as \\uXXXX text; long values are cut', () => {
    expect(sdEscape('a\nb\u0000c\u001b[2J\u0085\u2028')).toBe('a\\u000ab\\u0000c\\u001b[2J\\u0085\\u2028');
    expect(sdEscape('x'.repeat(300))).toHaveLength(257);
  });
});

describe('RFC 5424 header and RFC 6587 framing', () => {
  it('PRI = facility × 8 + severity; VERSION 1; the record time; MSGID the event; MSG the event JSON', () => {
    const e = encodeRecord(rec({ agent: 'a', decision: 'deny', outcome: 'denied', tool: 'fx__echo' }), '', 'ocsf', '1.0.0');
    const msg = formatSyslog(e, header, 65536, 'ocsf');
    expect(syslogSeverity(e)).toBe(4); // OCSF Medium (a policy block) → warning
    expect(msg.startsWith(`<${13 * 8 + 4}>1 2025-01-06T10:02:11.482Z gw1 gatehouse 42 tools/call [gatehouse@32473 seq="7" hash="${'ab'.repeat(32)}" agent="a" tool="fx__echo" decision="deny" outcome="denied" class_uid="6003"] {`)).toBe(true);
    expect(JSON.parse(msg.slice(msg.indexOf('] {') + 2))).toMatchObject({ class_uid: 6003, metadata: { sequence: 7 } });
  });

  it('MSGID and HOSTNAME are PRINTUSASCII without spaces, at most 32 / 255 characters, "-" when empty', () => {
    expect(printable('tools/call', 32)).toBe('tools/call');
    expect(printable('a b\nc\u00e9', 32)).toBe('a_b_c_');
    expect(printable('x'.repeat(40), 32)).toHaveLength(32);
    expect(printable('', 32)).toBe('-');
  });

  it('octet counting counts bytes, not characters, so a multi-byte message cannot end early or spill into the next', () => {
    const f = frame('<110>1 - - - - - - ✓é');
    const space = f.indexOf(0x20);
    const len = Number(f.subarray(0, space).toString());
    expect(len).toBe(f.length - space - 1);
    expect(len).toBe(Buffer.byteLength('<110>1 - - - - - - ✓é'));
  });

  it('the MSG is ASCII JSON (no BOM needed, no byte a receiver could take for a line end)', () => {
    const e = encodeRecord(rec({ agent: 'a', args: { t: 'line\nbreak ✓ \u2028' } }), '', 'ocsf', '1.0.0');
    const msg = formatSyslog(e, header, 65536, 'ocsf');
    expect(msg).toMatch(/^[\x20-\x7e]*$/);
  });

  it('a message over the limit is cut to fit and says so (structured data truncated="<bytes>")', () => {
    const e = encodeRecord(rec({ agent: 'a', note: 'N'.repeat(100_000) }), '', 'ocsf', '1.0.0');
    const msg = formatSyslog(e, header, 4096, 'ocsf');
    expect(Buffer.byteLength(msg)).toBeLessThanOrEqual(4096);
    expect(msg).toMatch(/ truncated="\d+"\] /);
    expect(JSON.parse(msg.slice(msg.indexOf('] {') + 2))).toMatchObject({ metadata: { is_truncated: true, sequence: 7 } });
  });
});
