import { appendAuditRecord } from '../audit/append.js';
import { GatehouseError } from '../errors.js';
import { controlSocketPath, socketAlive } from '../server/control.js';
import { RevocationList, type Revocation } from '../server/revocations.js';
import { DEFAULT_TTL, loadTokenKeys, mintToken, parseTtl } from '../server/tokens.js';
import { type Command, Exit, helpForSubcommand, parse, type Io } from './command.js';
import { adminRequest } from './control-client.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { esc, jsonLine } from '../terminal.js';

const HELP = `Usage: gatehouse token mint --agent NAME [--ttl DUR] [--json]
       gatehouse token revoke (JTI | --agent NAME) [--json]

mint: a bearer token (JWT, EdDSA) for an agent that runs outside the sandbox
and connects to the gateway over TCP. The agent name is the identity that
policy and audit see. Sandboxed agents (gatehouse run) need no token.

revoke: refuse a token from the next request on, even one in use: by its id
(the jti printed by mint), or every token of an agent issued before now
(--agent; tokens minted afterwards work). The list is kept in
<state>/keys/revoked-tokens.json; a running gateway is told through its
control socket. If that file cannot be read, every token is refused.

Options:
  --agent NAME       agent identity (letters, digits, . _ @ -); required for mint
  --ttl DUR          lifetime: 30m, 8h, 7d (default ${DEFAULT_TTL}, at most 30d)
  --admin            a token for the admin API over TCP (/admin/v1), not for /mcp use by agents
  --json             print the result as one JSON object
${DIR_HELP}
  -h, --help         this help

The token is printed on stdout only; keep it out of shell history and logs.
Exit codes: 0 done; 2 usage, or the revocation list on disk is unreadable
(nothing revoked; 1 when a running gateway reports it); 3 no gateway audit log
(the revocation is in force, its record is not written).
`;

async function revoke(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { ...dirOptions, agent: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (values.help) {
    io.out(HELP);
    return Exit.Ok;
  }
  const jti = positionals[0];
  if (positionals.length > 1) throw new GatehouseError('USAGE', `one token id at a time, got ${positionals.length}`);
  if ((jti === undefined) === (values.agent === undefined)) {
    throw new GatehouseError('USAGE', 'give a token id or --agent NAME, e.g. gatehouse token revoke 0b6f…-…  or  gatehouse token revoke --agent laptop-claude');
  }
  const what = jti !== undefined ? { jti } : { agent: values.agent ?? '' };
  const dirs = dirsFrom(values, io.env);
  let revoked: Revocation;
  let via: 'gateway' | 'file';
  if (await socketAlive(controlSocketPath(dirs.state))) {
    // One writer while a gateway runs; it audits the revocation itself.
    revoked = ((await adminRequest(dirs.state, 'POST', '/tokens/revoke', what)) as { revoked: Revocation }).revoked;
    via = 'gateway';
  } else {
    revoked = new RevocationList(dirs.state).revoke(what);
    via = 'file';
    await appendAuditRecord(dirs.state, { event: 'token.revoked', ...revoked, via: 'cli' });
  }
  // What the gateway answered, and names as typed: escaped like any other data.
  if (values.json) io.out(jsonLine({ revoked, via }));
  else if ('jti' in revoked) io.out(esc`revoked token ${revoked.jti} (${revoked.revokedAt})` + '\n');
  else io.out(esc`revoked every token of agent "${revoked.agent}" issued before ${revoked.revokedAt}` + '\n');
  return Exit.Ok;
}

async function mint(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, { ...dirOptions, agent: { type: 'string' }, ttl: { type: 'string', default: DEFAULT_TTL }, json: { type: 'boolean' }, admin: { type: 'boolean' } });
  if (values.help) {
    io.out(HELP);
    return Exit.Ok;
  }
  if (values.agent === undefined) throw new GatehouseError('USAGE', '--agent NAME is required, e.g. gatehouse token mint --agent laptop-claude --ttl 8h');
  const dirs = dirsFrom(values, io.env);
  const keys = await loadTokenKeys(dirs.state);
  const t = await mintToken(keys, values.agent, parseTtl(values.ttl ?? DEFAULT_TTL), Date.now(), { admin: values.admin === true });
  if (values.json) io.out(jsonLine({ token: t.token, agent: values.agent, expiresAt: t.expiresAt.toISOString(), id: t.id }));
  else {
    io.out(t.token + '\n');
    io.err(esc`token for agent "${values.agent}", expires ${t.expiresAt.toISOString()}, id ${t.id}; send it as "Authorization: Bearer <token>"` + '\n');
  }
  return Exit.Ok;
}

export const tokenCommand: Command = {
  name: 'token',
  summary: 'mint and revoke agent tokens for TCP clients',
  help: HELP,
  async run(argv, io) {
    const sub = argv[0];
    const helped = helpForSubcommand(sub, HELP, io);
    if (helped !== undefined) return helped;
    if (sub === 'mint') return mint(argv.slice(1), io);
    if (sub === 'revoke') return revoke(argv.slice(1), io);
    throw new GatehouseError('USAGE', `unknown subcommand "token ${sub}"; try: gatehouse token --help`);
  },
};
