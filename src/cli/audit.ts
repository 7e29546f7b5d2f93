import { existsSync, statSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkpointKeyPath, loadCheckpointKey, loadPublicJwk } from '../audit/checkpoint.js';
import { listAuditFiles, readFirstLine } from '../audit/files.js';
import { parseAuditFilters } from '../audit/filter.js';
import { matcher, type AuditFilters } from '../audit/query.js';
import { VERSION } from '../config/paths.js';
import { encodeRecord, FORMATS, type Format } from '../telemetry/siem/encode.js';
import { AuditReader, type Position } from '../telemetry/siem/reader.js';
import { verifyAudit, type VerifyReport } from '../audit/verify.js';
import { Exit, GatehouseError } from '../errors.js';
import { dirsFrom, handle, subcommand, type CommandModule } from './command.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

interface VerifyOptions {
  from?: string;
  pubkey?: string;
  anchor?: string;
  json?: boolean;
}

export const auditCommand: CommandModule = (program, io) => {
  const audit = subcommand(program, 'audit', 'verify the audit log, export it (OCSF, NDJSON), print its checkpoint public key');

  const verify = subcommand(audit, 'verify', 'check the hash chain, seqs and signed checkpoints')
    .description(
      'Walks every audit file in order (rotated ones too), recomputes the hash chain, checks that seqs have no gap, and checks every signed checkpoint. Names the first bad record: file, line, seq and what is wrong (edited, gap = removed, reordered, chain, truncated, signature, rewritten, start).',
    )
    .option('--from <seq>', 'check from this seq on (after a known-good verify)')
    .option('--pubkey <file>', "checkpoint public key (JWK); default: the gateway's own key in <state>/keys/audit-checkpoint.jwk")
    .option('--anchor <seq:hash>', 'a record you saw before (e.g. the last checkpoint of a previous verify): the log must still hold it, which catches records cut off from the end')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExit: 0 valid, 1 invalid, 2 usage.');
  handle<VerifyOptions>(verify, async (o) => {
    const from = o.from === undefined ? undefined : Number(o.from);
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 1)) throw new GatehouseError('USAGE', '--from must be a positive integer');
    let anchor: { seq: number; hash: string } | undefined;
    if (o.anchor !== undefined) {
      const m = /^(\d+):([0-9a-f]{64})$/.exec(o.anchor);
      if (!m) throw new GatehouseError('USAGE', '--anchor must be SEQ:HASH (64 hex digits)');
      anchor = { seq: Number(m[1]), hash: m[2] as string };
    }
    const state = dirsFrom(o, io.env).state;
    const keyFile = o.pubkey ?? checkpointKeyPath(state);
    const publicKey = o.pubkey !== undefined || existsSync(keyFile) ? (await loadPublicJwk(keyFile)).key : undefined;
    const dir = join(state, 'audit');
    if (!existsSync(dir)) throw new GatehouseError('USAGE', `no audit log in ${dir}`);
    let lastShown = 0;
    const report = await verifyAudit(dir, {
      ...(from !== undefined ? { from } : {}),
      ...(publicKey ? { publicKey } : {}),
      ...(anchor ? { anchor } : {}),
      ...(io.isTTY && !o.json
        ? {
            onProgress: (done: number, total: number) => {
              if (Date.now() - lastShown < 200) return;
              lastShown = Date.now();
              io.err(`\r\x1b[Kverifying… ${Math.floor((done / Math.max(total, 1)) * 100)}% (${Math.round(done / 1048576)} of ${Math.round(total / 1048576)} MiB)`);
            },
          }
        : {}),
    });
    if (lastShown > 0) io.err('\r\x1b[K');
    if (o.json) io.out(jsonLine(report));
    else io.out(describe(report, dir));
    if (!report.signaturesChecked && !o.json) io.err(esc`warning: no checkpoint public key (${keyFile}); signatures were not checked. Pass --pubkey FILE.\n`);
    return report.ok ? Exit.Ok : Exit.Failed;
  });

  const exp = subcommand(audit, 'export', 'write audit records as OCSF events or as stored (NDJSON), for a SIEM')
    .description(
      'Writes the audit records (rotated files too, oldest first) as one JSON object per line: OCSF 1.6.0 events (API Activity, Network Activity, Authentication, Detection Finding, Application Lifecycle; README "SIEM export") or the records as stored (jsonl: their hashes still verify). Every record is written, intents included.',
    )
    .option('--format <f>', `${FORMATS.join(' | ')} (default ocsf)`)
    .option('--since <time>', 'at or after this time: 1h, 2d (ago) or an ISO time (default: the log\'s start)')
    .option('--until <time>', 'before this time')
    .option('--event <e>', 'one event (tools/call, egress, session.opened…) or a glob ("tool.*")')
    .option('--output <file>', 'write here (0600, replaced whole once complete) instead of stdout')
    .addHelpText('after', '\nExit: 0 written (also when nothing matched), 2 usage, 3 no audit log.');
  handle<ExportOptions>(exp, async (o) => {
    const format = (o.format ?? 'ocsf') as Format;
    if (!FORMATS.includes(format)) throw new GatehouseError('USAGE', `--format must be one of: ${FORMATS.join(', ')}`);
    const filters = parseAuditFilters({ since: o.since, until: o.until, event: o.event }, { name: (k) => `--${k}` });
    const dir = join(dirsFrom(o, io.env).state, 'audit');
    if (!existsSync(dir)) throw new GatehouseError('STATE_UNAVAILABLE', `no audit log in ${dir}: start the gateway once (gatehouse serve), or pass the --state DIR it uses (env GATEHOUSE_STATE)`);
    if (o.output !== undefined && existsSync(o.output) && statSync(o.output).isDirectory()) throw new GatehouseError('USAGE', `--output ${o.output} is a directory`);
    const out = o.output === undefined ? { write: async (s: string) => io.out(s), done: async () => undefined, abandon: async () => undefined } : await replacingFile(resolve(o.output));
    let n = 0;
    let first: number | undefined;
    let last: number | undefined;
    try {
      // What the reader finds wrong (an edited record, records missing, a line that is not a record) is said, never skipped silently.
      for await (const lines of exportLines(dir, filters, format, (m) => io.err(esc`warning: ${m}` + '\n'))) {
        if (lines.text === '') continue;
        await out.write(lines.text);
        n += lines.count;
        first ??= lines.first;
        last = lines.last;
      }
      await out.done();
    } catch (e) {
      await out.abandon();
      throw e;
    }
    const what = `${n} record${n === 1 ? '' : 's'}${first !== undefined ? ` (seq ${first}..${last})` : ''}`;
    if (o.output !== undefined) io.err(esc`exported ${what} as ${format === 'ocsf' ? 'OCSF' : 'stored records'} to ${o.output}\n`);
    else if (n === 0) io.err('no matching audit records\n');
    return Exit.Ok;
  });

  const pubkey = subcommand(audit, 'pubkey', 'print the checkpoint public key (JWK) for verifiers on other machines');
  handle(pubkey, async (o) => {
    const state = dirsFrom(o, io.env).state;
    const file = checkpointKeyPath(state);
    // Only the gateway makes this key: one made here would sign nothing, and verifiers would trust it.
    if (!existsSync(file)) {
      throw new GatehouseError('STATE_UNAVAILABLE', `no audit checkpoint key in ${state}: the gateway creates it when it first starts; run gatehouse serve once, or pass the --state DIR it uses (env GATEHOUSE_STATE)`);
    }
    io.out(jsonLine((await loadCheckpointKey(file)).publicJwk));
    return Exit.Ok;
  });
};

interface ExportOptions {
  format?: string;
  since?: string;
  until?: string;
  event?: string;
  output?: string;
}

/**
 * The matching records, encoded, a batch of lines at a time. Whole files
 * before `since` or from `until` on are skipped by their first records'
 * times (as `gatehouse logs` does: assumes the clock did not step back
 * across a rotation); within a file every record is tested.
 */
async function* exportLines(dir: string, f: AuditFilters, format: Format, warn: (message: string) => void): AsyncGenerator<{ text: string; count: number; first: number | undefined; last: number | undefined }> {
  const files = listAuditFiles(dir).filter((x) => x.firstSeq !== undefined);
  const firstTime = (path: string) => /"time":"([^"]+)"/.exec(readFirstLine(path) ?? '')?.[1];
  let fromFile: number | undefined;
  let stopAt: number | undefined;
  for (let i = 0; i < files.length; i++) {
    const next = files[i + 1];
    const nextTime = next !== undefined ? firstTime(next.path) : undefined;
    if (f.since !== undefined && nextTime !== undefined && nextTime < f.since.toISOString()) fromFile = next?.firstSeq;
    const t = firstTime((files[i] as (typeof files)[number]).path);
    if (f.until !== undefined && stopAt === undefined && t !== undefined && t >= f.until.toISOString()) stopAt = files[i]?.firstSeq;
  }
  const match = matcher(f);
  const reader = new AuditReader(dir);
  let pos: Position | undefined;
  try {
    for (;;) {
      const { items, notices } = await reader.read(pos, { records: 2_000, bytes: 4 << 20 }, pos === undefined ? fromFile : undefined);
      for (const n of notices) warn(n.message);
      if (items.length === 0) return;
      let text = '';
      let count = 0;
      let first: number | undefined;
      let last: number | undefined;
      for (const it of items) {
        if (stopAt !== undefined && it.record.seq >= stopAt) break;
        if (!match(it.record)) continue;
        text += `${encodeRecord(it.record, it.line, format, VERSION, it.problems).json}\n`;
        count++;
        first ??= it.record.seq;
        last = it.record.seq;
      }
      yield { text, count, first, last };
      const end = items.at(-1) as (typeof items)[number];
      if (stopAt !== undefined && end.record.seq >= stopAt) return;
      pos = end.pos;
    }
  } finally {
    await reader.close();
  }
}

/** A file written whole or not at all: a 0600 temporary file beside it, fsynced, renamed over it. */
async function replacingFile(path: string): Promise<{ write: (s: string) => Promise<void>; done: () => Promise<void>; abandon: () => Promise<void> }> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.export.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  return {
    write: async (s) => void (await fh.write(s)),
    done: async () => {
      await fh.sync();
      await fh.close();
      await rename(tmp, path);
    },
    abandon: async () => {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    },
  };
}

function describe(r: VerifyReport, dir: string): string {
  const range = r.firstSeq === undefined ? 'no records' : `seq ${r.firstSeq}..${r.lastSeq}`;
  const head = `${r.records} records (${range}) in ${r.files.length} file${r.files.length === 1 ? '' : 's'} under ${escapeText(dir)}, ${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'}`;
  // Time and hash are read from the log being checked: data, escaped.
  const cp = r.lastCheckpoint
    ? esc`last checkpoint covers seq ${r.lastCheckpoint.seq} (${r.lastCheckpoint.time}); ${r.unsealed} record${r.unsealed === 1 ? '' : 's'} after it` +
      esc`\n  anchor for the next verify: --anchor ${r.lastCheckpoint.seq}:${r.lastCheckpoint.hash}\n`
    : `no checkpoint yet; all ${r.unsealed} records are unsealed\n`;
  const start = r.retainedFrom ? `  chain starts at seq ${r.retainedFrom.seq} after retention (accounted for by an audit.retention record)\n` : '';
  if (r.ok) return `audit log OK: ${head}${r.signaturesChecked ? ' (signatures valid)' : ''}\n  ${cp}${start}` + unfinishedText(r);
  const [first, ...rest] = r.problems;
  const line = (p: NonNullable<typeof first>) => esc`  ${p.file}:${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}: ${p.kind}: ${p.message}` + '\n';
  return (
    `audit log INVALID: ${head}\nfirst bad record:\n${first ? line(first) : ''}` +
    (rest.length ? `then ${rest.length} more problem${rest.length === 1 ? '' : 's'}:\n${rest.map(line).join('')}` : '') +
    unfinishedText(r)
  );
}

/** Forwarded calls with an intent record and no outcome (see VerifyReport.unfinished). */
function unfinishedText(r: VerifyReport): string {
  if (r.unfinishedCount === 0) return '';
  const shown = r.unfinished.slice(0, 20);
  const rows = shown.map((c) => esc`  ${c.file}:${c.line} (seq ${c.seq}) ${c.time} agent ${c.agent ?? '-'} tool ${c.tool ?? '-'} call ${c.call}: ${c.status}` + '\n');
  const more = r.unfinishedCount > shown.length ? `  … and ${r.unfinishedCount - shown.length} more (--json lists up to ${r.unfinished.length})\n` : '';
  const n = r.unfinishedCount;
  return `${n} forwarded call${n === 1 ? '' : 's'} without an outcome record (unknown: the upstream may have acted; check there):\n${rows.join('')}${more}`;
}

