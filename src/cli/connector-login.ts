/**
 * `gatehouse connector login NAME [--for AGENT]`: signs in to an `oauth:`
 * connector's server (src/upstreams/oauth/) and keeps the login in the OS
 * keychain, then tells a running gateway, which uses it at once.
 */
import { requireDuration } from '../config/duration.js';
import { Exit, GatehouseError } from '../errors.js';
import { loadRegistry } from '../registry/load.js';
import type { HttpConnector } from '../registry/schema.js';
import { bindSecrets } from '../secrets/bindings.js';
import { notifySecretChanged } from '../secrets/notice.js';
import { loginNote } from '../secrets/oauth/login.js';
import { storeLoginStore } from '../secrets/oauth/store.js';
import { StoreResolver } from '../secrets/resolve.js';
import type { SecretStore } from '../secrets/store.js';
import { AGENT_NAME } from '../server/tokens.js';
import { esc, jsonLine } from '../terminal.js';
import { dirsFrom, handle, subcommand, type Command, type DirFlags, type Io } from './command.js';
import { opener } from './console.js';
import { openLogin } from './open-login.js';

interface LoginFlags {
  for?: string;
  device?: boolean;
  browser?: boolean;
  open?: boolean;
  timeout?: string;
  json?: boolean;
}

export function addLoginCommand(connector: Command, io: Io, openStore: () => SecretStore): void {
  const cmd = subcommand(connector, 'login <name>', 'sign in to a remote MCP server that uses OAuth; the login goes to the OS keychain')
    .description(
      'Signs in to an `oauth:` connector\'s server (MCP authorization: the server\'s 401 and metadata name its authorization server) ' +
        'with a browser (authorization code + PKCE through a loopback redirect on 127.0.0.1) or, without one, the device flow (a code to enter elsewhere). ' +
        'The tokens go to the OS keychain only; a running gateway picks the login up at once and refreshes it itself. ' +
        'Exit 0 when signed in, 1 when the sign-in was refused or failed, 2 for a usage or configuration problem, 3 when a server or the keychain could not be reached.',
    )
    .option('--for <agent>', 'the login of one agent (oauth.per: agent): its calls act upstream as this user')
    .option('--device', 'use the device flow (print a code to enter on another device)')
    .option('--browser', 'use the browser flow even where no browser can be opened (open the printed URL yourself)')
    .option('--no-open', 'print the sign-in URL without starting a browser')
    .option('--timeout <duration>', 'how long to wait for the browser to come back (default 5m)')
    .option('--json', 'print the result as one JSON line');
  handle<LoginFlags>(cmd, async (o, [name]) => loginConnector(name ?? '', o, io, openStore));
}

async function loginConnector(name: string, o: DirFlags & LoginFlags, io: Io, openStore: () => SecretStore): Promise<number> {
  const dirs = dirsFrom(o, io.env);
  const registry = loadRegistry(dirs.registry);
  const c = registry.connectors.find((x) => x.name === name);
  if (!c) throw new GatehouseError('USAGE', `no connector "${name}" in ${dirs.registry}; see: gatehouse connector list`);
  if (c.kind !== 'http' || c.oauth === undefined) {
    throw new GatehouseError('USAGE', `connector "${name}" does not sign in with OAuth; for a remote MCP server that does, add "oauth: {}" to ${c.file}`);
  }
  const oauth = c.oauth;
  if (o.device === true && o.browser === true) throw new GatehouseError('USAGE', 'give --device or --browser, not both');
  const agent = o.for;
  if (agent !== undefined) {
    if (!AGENT_NAME.test(agent)) throw new GatehouseError('USAGE', `--for ${JSON.stringify(agent)}: an agent name (1-64 letters, digits, '.', '_', '@' or '-')`);
    if (oauth.per !== 'agent') throw new GatehouseError('USAGE', `connector "${name}" has one login for every agent; to give each agent its own, set oauth.per: agent in ${c.file}`);
  }
  const timeoutMs = o.timeout !== undefined ? requireDuration(o.timeout, '--timeout') : undefined;
  const store = openStore();
  const kept = storeLoginStore(store, c.name, agent);
  const previous = await kept.read().catch(() => null);
  let clientSecret: string | undefined;
  if (oauth.clientSecret !== undefined) {
    const resolver = new StoreResolver(store, { bindings: bindSecrets(registry.connectors).bindings, cacheMs: 0 });
    clientSecret = await resolver.render(oauth.clientSecret, { connector: c.name, where: 'oauth.clientSecret' });
  }
  const program = o.open === false ? undefined : opener(io.env);
  const flow = o.device === true ? 'device' : o.browser === true ? 'browser' : oauth.flow;
  const who = agent !== undefined ? ` for agent "${agent}"` : '';
  const say = o.json === true ? io.err : io.out;
  // The OAuth flows (discovery, PKCE, device grant) load only for a login.
  const { login } = await import('../upstreams/oauth/login.js');
  const r = await login({
    target: { name: c.name, file: c.file, url: c.url, oauth },
    flow,
    browserAtHand: program !== undefined,
    clientSecret,
    previous: previous ?? undefined,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    onAuthorizeUrl: (url) => {
      say(esc`Sign in to ${c.name}${who} in a browser:\n  ${url}\n`);
      if (program !== undefined && openLogin(program, url, new Date(Date.now() + (timeoutMs ?? 300_000)).toISOString())) say('Opening it in your browser...\n');
      say('Waiting for the browser to come back to 127.0.0.1 (Ctrl-C to stop)...\n');
    },
    onDeviceCode: (d) => {
      say(esc`To sign in to ${c.name}${who}, open ${d.verificationUri} on any device and enter the code:\n\n    ${d.userCode}\n\n`);
      if (d.verificationUriComplete !== undefined) say(esc`(or open ${d.verificationUriComplete})\n`);
      say(esc`Waiting for the sign-in (the code expires in ${Math.round(d.expiresInS / 60)} min)...\n`);
    },
  });
  await kept.write(r.login);
  // A running gateway re-reads the login at once (and a not-ready connector starts).
  notifySecretChanged(dirs.state, kept.entry);
  const note = loginNote(r.login, Date.now());
  if (o.json === true) {
    io.out(jsonLine({ ok: true, connector: c.name, ...(agent !== undefined ? { agent } : {}), issuer: r.login.issuer, flow: r.flow, client: r.client.via, entry: kept.entry, scope: r.login.scope ?? null, expiresAt: r.login.expiresAt ?? null, refreshes: r.login.refreshToken !== undefined }));
  } else {
    io.out(esc`Signed in to ${c.name}${who} at ${r.login.issuer} (${r.flow} flow, client by ${r.client.via}).\n`);
    io.out(esc`${note}. The login is in ${store.description} under "${kept.entry}"; a running gateway uses it now.\n`);
  }
  return Exit.Ok;
}

/** For `connector list`: the connectors that sign in with OAuth. */
export function isOAuthConnector(c: { kind: string }): c is HttpConnector & { oauth: NonNullable<HttpConnector['oauth']> } {
  return c.kind === 'http' && (c as HttpConnector).oauth !== undefined;
}
