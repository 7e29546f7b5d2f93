import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointKeyPath, loadCheckpointKey, loadPublicJwk } from '../audit/checkpoint.js';
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
  const audit = subcommand(program, 'audit', 'verify the audit log, print its checkpoint public key');

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

