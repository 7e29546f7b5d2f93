import { appendAuditRecord } from '../audit/append.js';
import { requireDuration } from '../config/duration.js';
import { Exit, GatehouseError } from '../errors.js';
import { RevocationList, type Revocation } from '../server/revocations.js';
import { DEFAULT_TTL, loadTokenKeys, mintToken } from '../server/tokens.js';
import { dirsFrom, handle, subcommand, type CommandModule } from './command.js';
import { adminRequest, gatewayRunning } from '../server/control-client.js';
import { esc, jsonLine } from '../terminal.js';

const TOKEN_HELP = `
mint: a bearer token (JWT, EdDSA) for an agent that runs outside the sandbox
and connects to the gateway over TCP. The agent name is the identity that
policy and audit see. Sandboxed agents (gatehouse run) need no token. A token
works only with the gateway of the same --state (its keys live there).

revoke: refuse a token from the next request on, even one in use: by its id
(the jti printed by mint), or every token of an agent issued before now
(--agent; tokens minted afterwards work). The list is kept in
<state>/keys/revoked-tokens.json; a running gateway is told through its
control socket. If that file cannot be read, every token is refused.`;

const REVOKE_EXIT = `
Exit codes: 0 done; 2 usage, or the revocation list on disk is unreadable
(nothing revoked; 1 when a running gateway reports it); 3 no gateway audit log
(the revocation is in force, its record is not written).`;

interface MintOptions {
  agent?: string;
  ttl: string;
  admin?: boolean;
  json?: boolean;
}

interface RevokeOptions {
  agent?: string;
  json?: boolean;
}

export const tokenCommand: CommandModule = (program, io) => {
  const token = subcommand(program, 'token', 'mint and revoke agent tokens for TCP clients').addHelpText('after', TOKEN_HELP);

  const mint = subcommand(token, 'mint', 'a bearer token for an agent outside the sandbox')
    .description('Prints a bearer token (JWT, EdDSA) for an agent that connects over TCP; the agent name is what policy and audit see.')
    .option('--agent <name>', 'agent identity (letters, digits, . _ @ -); required')
    .option('--ttl <duration>', 'lifetime: 30m, 8h, 1h30m, 7d (at most 30d)', DEFAULT_TTL)
    .option('--admin', 'a token for the admin API over TCP (/admin/v1), not for /mcp use by agents')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', '\nThe token is printed on stdout only; keep it out of shell history and logs.\nIt works only with the gateway of the same --state.');
  handle<MintOptions>(mint, async (o) => {
    if (o.agent === undefined) throw new GatehouseError('USAGE', '--agent NAME is required, e.g. gatehouse token mint --agent laptop-claude --ttl 8h');
    const ttlMs = requireDuration(o.ttl, '--ttl');
    const dirs = dirsFrom(o, io.env);
    const keys = await loadTokenKeys(dirs.state);
    const t = await mintToken(keys, o.agent, ttlMs, Date.now(), { admin: o.admin === true });
    if (o.json) io.out(jsonLine({ token: t.token, agent: o.agent, expiresAt: t.expiresAt.toISOString(), id: t.id }));
    else {
      io.out(t.token + '\n');
      io.err(esc`token for agent "${o.agent}", expires ${t.expiresAt.toISOString()}, id ${t.id}; send it as "Authorization: Bearer <token>"` + '\n');
    }
    return Exit.Ok;
  });

  const revoke = subcommand(token, 'revoke [jti]', 'refuse a token (by id) or every token of an agent from now on')
    .option('--agent <name>', 'revoke every token of this agent issued before now')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', REVOKE_EXIT);
  handle<RevokeOptions>(revoke, async (o, args) => {
    const jti = args[0];
    if ((jti === undefined) === (o.agent === undefined)) {
      throw new GatehouseError('USAGE', 'give a token id or --agent NAME, e.g. gatehouse token revoke 0b6f…-…  or  gatehouse token revoke --agent laptop-claude');
    }
    const what = jti !== undefined ? { jti } : { agent: o.agent ?? '' };
    const dirs = dirsFrom(o, io.env);
    let revoked: Revocation;
    let via: 'gateway' | 'file';
    if (await gatewayRunning(dirs.state)) {
      // One writer while a gateway runs; it audits the revocation itself.
      revoked = ((await adminRequest(dirs.state, 'POST', '/tokens/revoke', what)) as { revoked: Revocation }).revoked;
      via = 'gateway';
    } else {
      revoked = new RevocationList(dirs.state).revoke(what);
      via = 'file';
      await appendAuditRecord(dirs.state, { event: 'token.revoked', ...revoked, via: 'cli' });
    }
    // What the gateway answered, and names as typed: escaped like any other data.
    if (o.json) io.out(jsonLine({ revoked, via }));
    else if ('jti' in revoked) io.out(esc`revoked token ${revoked.jti} (${revoked.revokedAt})` + '\n');
    else io.out(esc`revoked every token of agent "${revoked.agent}" issued before ${revoked.revokedAt}` + '\n');
    return Exit.Ok;
  });
};
