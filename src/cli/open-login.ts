/**
 * Opens a console login URL in the desktop's browser without putting it on
 * any command line: an opener's argv is readable by every local user (ps,
 * /proc/PID/cmdline) on a system without `hidepid`, and the URL's fragment is
 * the login secret. The opener gets a file:// page instead, in a private
 * temporary folder (0700, file 0600), that sends the browser on to the URL;
 * the folder is removed once the secret has expired anyway.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Removes the folder (argv[1]) after argv[2] ms: a process of its own, so `gatehouse console` can exit at once. */
const REMOVER = "setTimeout(() => require('node:fs').rmSync(process.argv[1], { recursive: true, force: true }), Number(process.argv[2]))";
/** The page is removed no sooner than this, so a browser that starts slowly still finds it. */
const MIN_KEEP_MS = 15_000;

const html = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The redirect page: a meta refresh (and a script, and a link, for browsers that hold refreshes back). The console's CSP does not apply to a file page. */
export function redirectPage(url: string): string {
  const script = JSON.stringify(url).replace(/</g, '\\u003c');
  return (
    '<!doctype html>\n<meta charset="utf-8">\n<meta name="referrer" content="no-referrer">\n' +
    `<meta http-equiv="refresh" content="0;url=${html(url)}">\n<title>Gatehouse console</title>\n` +
    `<script>location.replace(${script});</script>\n<p><a href="${html(url)}">Open the Gatehouse console</a></p>\n`
  );
}

/** Writes the redirect page; returns its file:// URL and folder. */
export function writeRedirectPage(url: string, dir = tmpdir()): { fileUrl: string; folder: string } {
  // mkdtemp makes the folder 0700: no other user can list or read it.
  const folder = mkdtempSync(join(dir, 'gatehouse-console-'));
  const file = join(folder, 'open.html');
  writeFileSync(file, redirectPage(url), { mode: 0o600, flag: 'wx' });
  return { fileUrl: pathToFileURL(file).href, folder };
}

function detached(program: string, args: string[]): boolean {
  try {
    const child = spawn(program, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the opener on a redirect page to `url` and forgets it: the link is printed either way, so a failure here
 * is no failure of the command. The page is removed after `expiresAt` (when the secret stops working).
 */
export function openLogin(program: string, url: string, expiresAt: string, now = Date.now()): boolean {
  let page: { fileUrl: string; folder: string };
  try {
    page = writeRedirectPage(url);
  } catch {
    return false;
  }
  const keepMs = Math.max(MIN_KEEP_MS, Date.parse(expiresAt) - now + 5_000);
  detached(process.execPath, ['-e', REMOVER, page.folder, String(keepMs)]);
  return detached(program, [page.fileUrl]);
}
