/**
 * The syslog sink against a real rsyslogd: RFC 5424 messages over TCP with
 * octet-counting framing (RFC 6587 §3.4.1) and over TLS (RFC 5425, rsyslog's
 * gtls driver), read back as rsyslog parsed them (mmpstrucdata for the
 * structured data).
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, until } from '../../helpers/gateway.js';
import { FAST, startSiemGateway, type SiemGateway } from './helpers.js';
import { selfSigned, startRsyslog, type Received, type Rsyslog } from './rsyslog.js';

let rs: Rsyslog;
let t: SiemGateway | undefined;
beforeAll(async () => {
  rs = await startRsyslog();
});
afterAll(async () => {
  await rs?.stop();
});
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const SD_ID = 'gatehouse@32473';
const sd = (r: Received) => r.sd[SD_ID] ?? {};
const ofSink = (name: string) => rs.received().filter((r) => r.app === name);
/** Waits until rsyslog has every record of the gateway's log (by seq in the structured data) and returns them. */
async function allArrived(g: SiemGateway, app: string): Promise<Received[]> {
  return until(() => {
    const got = ofSink(app);
    const seqs = new Set(got.map((r) => Number(sd(r).seq)));
    const last = g.records().at(-1)?.seq as number;
    for (let s = 1; s <= last; s++) if (!seqs.has(s)) return undefined;
    return got;
  }, `rsyslog to receive every record (${app})`, 30_000);
}

describe('syslog sink and a real rsyslogd', () => {
  it('RFC 5424 over TCP, octet-counted: each record is one message — event as MSGID, fields as structured data, the OCSF event as MSG', async () => {
    t = await startSiemGateway([{ name: 'tcp', kind: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'gh-tcp', ...FAST }]);
    const c = await t.client('laptop-claude');
    for (let i = 0; i < 5; i++) await c.callTool({ name: 'fx__echo', arguments: { text: `line ${i}\nwith a newline` } });
    const got = await allArrived(t, 'gh-tcp');
    expect(got).toHaveLength(new Set(got.map((r) => sd(r).seq)).size); // none twice
    const call = got.find((r) => r.msgid === 'tools/call') as Received;
    expect(sd(call)).toMatchObject({ agent: 'laptop-claude', tool: 'fx__echo', connector: 'fx', decision: 'allow', outcome: 'ok', class_uid: '6003' });
    expect(call.facility).toBe(13); // log audit
    expect(call.severity).toBe(6); // informational
    const event = JSON.parse(call.msg) as Record<string, unknown>;
    expect(event).toMatchObject({ class_uid: 6003, metadata: { sequence: Number(sd(call).seq), uid: sd(call).hash } });
    // The newline inside an argument stayed inside its JSON string: one message, not two.
    expect(JSON.stringify(event)).toContain('with a newline');
    expect(got.every((r) => !r.msg.includes('#012'))).toBe(true);
  });

  it('hostile tool names cannot forge structured data or split a message: quote, backslash, "]" and control characters are escaped (RFC 5424 §6.3.3)', async () => {
    t = await startSiemGateway([{ name: 'tcp', kind: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'gh-hostile', ...FAST }]);
    const c = await t.client('laptop-claude');
    const hostile = 'ev"il\\] [forged@1 admin="yes"] 12 <0>1 - - - - - -\n\u0000\u001b[2J]';
    await expect(c.callTool({ name: hostile, arguments: {} })).rejects.toBeInstanceOf(McpError);
    const got = await allArrived(t, 'gh-hostile');
    const forged = got.find((r) => r.msgid === 'tools/call' && String(sd(r).tool ?? '').includes('forged')) as Received;
    expect(forged).toBeDefined();
    // One SD element, ours; the tool name is one parameter value.
    expect(Object.keys(forged.sd)).toEqual([SD_ID]);
    expect(sd(forged).tool).toBe('ev"il\\] [forged@1 admin="yes"] 12 <0>1 - - - - - -\\u000a\\u0000\\u001b[2J]');
    expect(sd(forged).admin).toBeUndefined();
    // MSG carries the exact name.
    const event = JSON.parse(forged.msg) as { resources: Array<{ name: string }> };
    expect(event.resources[0]?.name).toBe(hostile);
    // Nothing else arrived as a message of its own.
    expect(got.filter((r) => r.msgid !== '-' && !/^[a-z./]+$/.test(r.msgid))).toEqual([]);
  });

  it('a record over the message size limit arrives cut and marked; the records after it arrive whole', async () => {
    t = await startSiemGateway([{ name: 'tcp', kind: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'gh-huge', maxMessageBytes: 8192, ...FAST }]);
    await t.gw.audit.append({ event: 'test.big', agent: 'laptop-claude', note: 'H'.repeat(60_000) });
    await t.gw.audit.append({ event: 'test.after', agent: 'laptop-claude', note: 'fine' });
    const got = await allArrived(t, 'gh-huge');
    const big = got.find((r) => r.msgid === 'test.big') as Received;
    expect(Buffer.byteLength(big.msg)).toBeLessThan(8192);
    expect(sd(big).truncated).toMatch(/^\d+$/);
    expect(JSON.parse(big.msg)).toMatchObject({ metadata: { is_truncated: true } });
    expect(JSON.parse((got.find((r) => r.msgid === 'test.after') as Received).msg)).toMatchObject({ unmapped: { note: 'fine' } });
  });

  it('TLS (RFC 5425) to rsyslog\'s gtls driver with a self-signed certificate the sink trusts: records arrive', async () => {
    t = await startSiemGateway([{ name: 'tls', kind: 'syslog', transport: 'tls', host: '127.0.0.1', port: rs.tlsPort, ca: rs.caFile, appName: 'gh-tls', ...FAST }]);
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'over tls' } });
    const got = await allArrived(t, 'gh-tls');
    expect(got.some((r) => r.msgid === 'tools/call')).toBe(true);
  });

  it('a TLS receiver whose certificate the sink does not trust gets nothing (no fallback to plain or unverified)', async () => {
    const other = selfSigned(tempDir('gatehouse-other-ca-'), 'other');
    t = await startSiemGateway([{ name: 'tls', kind: 'syslog', transport: 'tls', host: '127.0.0.1', port: rs.tlsPort, ca: other.cert, appName: 'gh-untrusted', ...FAST }]);
    await (await t.client('laptop-claude')).callTool({ name: 'fx__echo', arguments: { text: 'x' } });
    await until(() => t!.stats().failures >= 2, 'refused TLS handshakes');
    expect(t.stats().lastError).toMatch(/cannot connect: .*(self-signed|self signed|unable to verify)/i);
    expect(t.stats().backlog).toBeGreaterThan(0);
    expect(ofSink('gh-untrusted')).toEqual([]);
  });

  it('the receiver restarts: the sink reconnects and the records written meanwhile arrive', async () => {
    t = await startSiemGateway([{ name: 'tcp', kind: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'gh-restart', ...FAST }]);
    const c = await t.client('laptop-claude');
    await c.callTool({ name: 'fx__echo', arguments: { text: 'before' } });
    await allArrived(t, 'gh-restart');
    await rs.stop();
    await c.callTool({ name: 'fx__echo', arguments: { text: 'while down' } });
    await until(() => t!.stats().failures >= 1, 'a failed send while rsyslog is down');
    await rs.restart();
    const got = await allArrived(t, 'gh-restart');
    expect(got.some((r) => r.msg.includes('while down'))).toBe(true);
  });
});
