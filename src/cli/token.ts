import { GatehouseError } from '../errors.js';
import { loadTokenKeys, mintToken, parseTtl } from '../server/tokens.js';
import { type Command, Exit, helpForSubcommand, parse } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';

const HELP = `Usage: gatehouse token mint --agent NAME [--ttl DUR] [--json]

Mints a bearer token (JWT, EdDSA) for an agent that runs outside the sandbox
and connects to the gateway over TCP. The agent name is the identity that
policy and audit see. Sandboxed agents (gatehouse run) need no token.

Options:
  --agent NAME       agent identity (letters, digits, . _ @ -), required
  --ttl DUR          lifetime: 30m, 8h, 7d (default 8h, at most 90d)
  --admin            a token for the admin API over TCP (/admin/v1), not for /mcp use by agents
  --json             print {"token","agent","expiresAt"} as JSON
${DIR_HELP}
  -h, --help         this help

The token is printed on stdout only; keep it out of shell history and logs.
`;

export const tokenCommand: Command = {
  name: 'token',
  summary: 'mint agent tokens for TCP clients',
  help: HELP,
  async run(argv, io) {
    const sub = argv[0];
    const helped = helpForSubcommand(sub, HELP, io);
    if (helped !== undefined) return helped;
    if (sub !== 'mint') throw new GatehouseError('USAGE', `unknown subcommand "token ${sub}"; try: gatehouse token mint --help`);
    const { values } = parse(argv.slice(1), { ...dirOptions, agent: { type: 'string' }, ttl: { type: 'string', default: '8h' }, json: { type: 'boolean' }, admin: { type: 'boolean' } });
    if (values.help) {
      io.out(HELP);
      return Exit.Ok;
    }
    if (values.agent === undefined) throw new GatehouseError('USAGE', '--agent NAME is required, e.g. gatehouse token mint --agent laptop-claude --ttl 8h');
    const dirs = dirsFrom(values, io.env);
    const keys = await loadTokenKeys(dirs.state);
    const t = await mintToken(keys, values.agent, parseTtl(values.ttl ?? '8h'), Date.now(), { admin: values.admin === true });
    if (values.json) io.out(JSON.stringify({ token: t.token, agent: values.agent, expiresAt: t.expiresAt.toISOString() }) + '\n');
    else {
      io.out(t.token + '\n');
      io.err(`token for agent "${values.agent}", expires ${t.expiresAt.toISOString()}; send it as "Authorization: Bearer <token>"\n`);
    }
    return Exit.Ok;
  },
};
