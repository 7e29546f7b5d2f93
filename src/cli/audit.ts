import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointKeyPath, loadCheckpointKey, loadPublicJwk } from '../audit/checkpoint.js';
import { verifyAudit, type VerifyReport } from '../audit/verify.js';
import { GatehouseError } from '../errors.js';
import { type Command, Exit, helpForSubcommand, parse } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

const HELP = `Usage: gatehouse audit verify [--from SEQ] [--pubkey FILE] [--anchor SEQ:HASH] [--json]
       gatehouse audit pubkey

verify   Walks every audit file in order (rotated ones too), recomputes the
         hash chain, checks that seqs have no gap, and checks every signed
         checkpoint. Names the first bad record: file, line, seq and what is
         wrong (edited, gap = removed, reordered, chain, truncated, signature,
         rewritten, start).
         --from SEQ         check from this seq on (after a known-good verify)
         --pubkey FILE      checkpoint public key (JWK); default: the gateway's
                            own key in <state>/keys/audit-checkpoint.jwk
         --anchor SEQ:HASH  a record you saw before (e.g. the last checkpoint
                            of a previous verify): the log must still hold it,
                            which catches records cut off from the end
         --json             print the report as JSON
         Exit: 0 valid, 1 invalid, 2 usage.
pubkey   Prints the checkpoint public key (JWK) for verifiers on other machines.

Options:
${DIR_HELP}
  -h, --help         this help
`;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'verify the audit log, print its checkpoint public key',
  help: HELP,
  async run(argv, io) {
    const sub = argv[0];
    const helped = helpForSubcommand(sub, HELP, io);
    if (helped !== undefined) return helped;
    if (sub === 'pubkey') {
      const { values } = parse(argv.slice(1), { ...dirOptions });
      if (values.help) {
        io.out(HELP);
        return Exit.Ok;
      }
      const key = await loadCheckpointKey(checkpointKeyPath(dirsFrom(values, io.env).state));
      io.out(jsonLine(key.publicJwk));
      return Exit.Ok;
    }
    if (sub !== 'verify') throw new GatehouseError('USAGE', `unknown subcommand "audit ${sub}"; try: gatehouse audit verify`);
    const { values } = parse(argv.slice(1), { ...dirOptions, from: { type: 'string' }, pubkey: { type: 'string' }, anchor: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) {
      io.out(HELP);
      return Exit.Ok;
    }
    const from = values.from === undefined ? undefined : Number(values.from);
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 1)) throw new GatehouseError('USAGE', '--from must be a positive integer');
    let anchor: { seq: number; hash: string } | undefined;
    if (values.anchor !== undefined) {
      const m = /^(\d+):([0-9a-f]{64})$/.exec(values.anchor);
      if (!m) throw new GatehouseError('USAGE', '--anchor must be SEQ:HASH (64 hex digits)');
      anchor = { seq: Number(m[1]), hash: m[2] as string };
    }
    const state = dirsFrom(values, io.env).state;
    const keyFile = values.pubkey ?? checkpointKeyPath(state);
    const publicKey = values.pubkey !== undefined || existsSync(keyFile) ? (await loadPublicJwk(keyFile)).key : undefined;
    const dir = join(state, 'audit');
    if (!existsSync(dir)) throw new GatehouseError('USAGE', `no audit log in ${dir}`);
    let lastShown = 0;
    const report = await verifyAudit(dir, {
      ...(from !== undefined ? { from } : {}),
      ...(publicKey ? { publicKey } : {}),
      ...(anchor ? { anchor } : {}),
      ...(io.isTTY && !values.json
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
    if (values.json) io.out(jsonLine(report));
    else io.out(describe(report, dir));
    if (!report.signaturesChecked && !values.json) io.err(esc`warning: no checkpoint public key (${keyFile}); signatures were not checked. Pass --pubkey FILE.\n`);
    return report.ok ? Exit.Ok : Exit.Failed;
  },
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

