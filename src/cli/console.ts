/** `gatehouse console`: a one-time login URL for the web console of the running gateway, printed and opened. */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Exit } from '../errors.js';
import { adminRequest } from '../server/control-client.js';
import { esc, jsonLine } from '../terminal.js';
import { dirsFrom, handle, subcommand, type CommandModule, type Io } from './command.js';
import { openLogin } from './open-login.js';

interface ConsoleOptions {
  open?: boolean;
  json?: boolean;
}

/** The desktop's "open this URL" program, when there is one and a display to open it on. */
export function opener(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'darwin') return '/usr/bin/open';
  if (platform !== 'linux' && platform !== 'freebsd' && platform !== 'openbsd') return undefined;
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, 'xdg-open'))) return join(dir, 'xdg-open');
  }
  return undefined;
}

export const consoleCommand: CommandModule = (program, io: Io) => {
  const cmd = subcommand(program, 'console', 'a one-time login link to the web console (approvals, audit, live state)')
    .description(
      'Asks the running gateway (over its control socket, so only its admin can) for a one-time login URL of the web console ' +
        'served on its TCP listener under /console/, prints it and opens it in the browser when it can (xdg-open / open). ' +
        'The link works once and for 2 minutes and logs in one browser tab; the page trades it for a session cookie and a token kept in that tab. ' +
        'The browser is given a private file page that leads to the link, never the link itself (a command line is readable by other local users). ' +
        'A listener beyond loopback issues no links unless serve ran with --console-insecure. Exit 3 when no gateway runs.',
    )
    .option('--no-open', 'print the link only (do not start a browser)')
    .option('--json', 'print {"url","expiresAt"} as one JSON line');
  handle<ConsoleOptions>(cmd, async (o) => {
    const dirs = dirsFrom(o, io.env);
    const login = (await adminRequest(dirs.state, 'POST', '/console/login')) as { url: string; expiresAt: string };
    if (o.json === true) {
      io.out(jsonLine(login));
    } else {
      io.out(esc`Console login link (works once, until ${login.expiresAt}):\n  ${login.url}\n`);
    }
    const program = o.open === false ? undefined : opener(io.env);
    if (program !== undefined && openLogin(program, login.url, login.expiresAt) && o.json !== true) io.out('Opening it in your browser...\n');
    return Exit.Ok;
  });
};
