import { appendAuditRecord } from '../audit/append.js';
import type { Dirs } from '../config/paths.js';
import { Exit, GatehouseError, errorMessage } from '../errors.js';
import { loadRegistry, type Registry } from '../registry/load.js';
import { secretUses } from '../secrets/bindings.js';
import { KeychainStore } from '../secrets/keychain.js';
import { isSet } from '../secrets/presence.js';
import { notifySecretChanged } from '../secrets/notice.js';
import { checkForSink, checkNewValue, MAX_SECRET_LENGTH, type Sink } from '../secrets/safety.js';
import type { SecretStore } from '../secrets/store.js';
import { SECRET_NAME } from '../secrets/template.js';
import { dirsFrom, handle, subcommand, table, type CommandModule, type DirFlags, type Io } from './command.js';
import { esc, jsonLine } from '../terminal.js';

const SECRET_HELP = `
Service credentials live in the OS keychain (macOS Keychain, Windows
Credential Manager, Linux Secret Service), one entry per secret under the
service "gatehouse". Registry values reference them as \${secret:NAME}; the
gateway adds them to upstream requests after policy allowed a call. Values
are never printed.`;

const SET_HELP = `
On a terminal the value is read from a hidden prompt (asked twice); otherwise
from stdin, with one trailing newline removed:
  printf %s "$TOKEN" | gatehouse secret set github-token
The value is never taken from the command line (it would land in shell
history and in the process list).

A running gateway picks the new value up at once: http connectors on their
next request, stdio connectors are restarted.

Refused: an empty value; CR, LF, NUL or other control characters (they could
inject a header line); values shorter than 8 characters (their encoded forms
cannot be redacted from output).`;

const openStore = (): SecretStore => new KeychainStore();

export const secretCommand: CommandModule = (program, io) => {
  const secret = subcommand(program, 'secret', 'manage service credentials in the OS keychain').addHelpText('after', SECRET_HELP);

  const set = subcommand(secret, 'set <name>', 'store a value (hidden prompt, or stdin when piped)')
    .option('--multiline', 'allow LF and tab (PEM keys); such a value can only go into a stdio env')
    .option('--allow-short', 'allow 4-7 characters (only the literal value is redacted)')
    .addHelpText('after', SET_HELP);
  handle<{ multiline?: boolean; allowShort?: boolean }>(set, async (o, args) => setSecret(nameArg(args), o, io));

  const list = subcommand(secret, 'list', 'names, whether each is set, and which connectors use it (never values)').option(
    '--json',
    'one JSON object: {"secrets":[{"name","present","connectors"}]}',
  );
  handle<{ json?: boolean }>(list, async (o) => listSecrets(o, io));

  const del = subcommand(secret, 'delete <name>', 'remove a secret (exit 1 if there was none)').addHelpText(
    'after',
    '\nConnectors that use it stop being ready (a running gateway notices at once).',
  );
  handle(del, async (o, args) => deleteSecret(nameArg(args), o, io));

  const check = subcommand(secret, 'check', 'every ${secret:NAME} in the registry: present, missing or unusable')
    .option('--json', 'one JSON object: {"ok","secrets":[{"name","status","connectors"}]}')
    .addHelpText('after', '\nExit 0 when all are usable, 1 when one is not, 2 for an invalid registry, 3 when the keychain cannot be reached.');
  handle<{ json?: boolean }>(check, async (o) => checkSecrets(o, io));
};

function nameArg(args: string[]): string {
  const name = args[0] ?? '';
  if (!SECRET_NAME.test(name)) throw new GatehouseError('USAGE', `invalid secret name ${JSON.stringify(name.slice(0, 140))}: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return name;
}

/** Secret name → the places in the registry that use it. */
function usesByName(registry: Registry | undefined): Map<string, { connector: string; where: string; sink: Sink }[]> {
  const out = new Map<string, { connector: string; where: string; sink: Sink }[]>();
  for (const c of registry?.connectors ?? []) {
    for (const u of secretUses(c)) {
      const where = u.path.map(String).join('.');
      const sink: Sink = u.path[0] === 'env' ? 'env' : 'header';
      out.set(u.secret, [...(out.get(u.secret) ?? []), { connector: u.connector, where, sink }]);
    }
  }
  return out;
}

/**
 * [audit seam] secret.set / secret.delete are recorded by name only, through
 * the audit module's `appendAuditRecord` (via a running gateway's socket, or
 * directly under the writer lock).
 */
async function audit(dirs: Dirs, event: 'secret.set' | 'secret.delete', name: string, io: Io): Promise<number> {
  try {
    await appendAuditRecord(dirs.state, { event, name, via: 'cli' });
    return Exit.Ok;
  } catch (e) {
    io.err(esc`gatehouse secret: the change was made but could not be audited: ${errorMessage(e)}\n`);
    return Exit.Unavailable;
  }
}

async function setSecret(name: string, values: DirFlags & { multiline?: boolean; allowShort?: boolean }, io: Io): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const value = io.stdin.isTTY ? await promptTwice(io, name) : await readPiped(io.stdin);
  const verdict = checkNewValue(value, { multiline: values.multiline === true, allowShort: values.allowShort === true });
  if (!verdict.ok) throw new GatehouseError('USAGE', `the value for "${name}" ${verdict.reason}; nothing was stored`);
  const uses = usesByName(tryLoadRegistry(dirs, io)).get(name) ?? [];
  for (const u of uses) {
    const fit = checkForSink(value, u.sink);
    if (!fit.ok) throw new GatehouseError('USAGE', `the value for "${name}" ${fit.reason}, but connector "${u.connector}" uses it in ${u.where}; nothing was stored`);
  }
  const store = openStore();
  await store.set(name, value);
  notifySecretChanged(dirs.state, name);
  io.err(
    uses.length === 0
      ? esc`stored "${name}" in ${store.description}; no connector in ${dirs.registry} references \${secret:${name}} yet\n`
      : esc`stored "${name}" in ${store.description}; used by ${[...new Set(uses.map((u) => u.connector))].join(', ')}\n`,
  );
  return audit(dirs, 'secret.set', name, io);
}

async function deleteSecret(name: string, values: DirFlags, io: Io): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const store = openStore();
  if (!(await store.delete(name))) {
    io.err(esc`gatehouse secret delete: no secret "${name}" in ${store.description}\n`);
    return Exit.Failed;
  }
  notifySecretChanged(dirs.state, name);
  const users = [...new Set((usesByName(tryLoadRegistry(dirs, io)).get(name) ?? []).map((u) => u.connector))];
  io.err(esc`deleted "${name}"` + (users.length > 0 ? esc`; connectors that need it are no longer ready: ${users.join(', ')}` : '') + '\n');
  return audit(dirs, 'secret.delete', name, io);
}

async function listSecrets(values: DirFlags & { json?: boolean }, io: Io): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const uses = usesByName(tryLoadRegistry(dirs, io));
  const stored = new Set(await openStore().list());
  const names = [...new Set([...stored, ...uses.keys()])].sort();
  const rows = names.map((name) => ({ name, present: stored.has(name), connectors: [...new Set((uses.get(name) ?? []).map((u) => u.connector))].sort() }));
  if (values.json) io.out(jsonLine({ secrets: rows }));
  else if (rows.length === 0) io.out('no secrets stored and none referenced by the registry\n');
  else io.out(table(['NAME', 'STATUS', 'USED BY'], rows.map((r) => [r.name, r.present ? 'present' : 'missing', r.connectors.length > 0 ? r.connectors.join(', ') : '(unused)'])));
  return Exit.Ok;
}

async function checkSecrets(values: DirFlags & { json?: boolean }, io: Io): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const registry = loadRegistry(dirs.registry);
  const uses = usesByName(registry);
  const store = openStore();
  const rows: { name: string; status: 'present' | 'missing' | 'unusable'; reason?: string; connectors: string[] }[] = [];
  for (const [name, list] of [...uses].sort(([a], [b]) => a.localeCompare(b))) {
    const connectors = [...new Set(list.map((u) => u.connector))].sort();
    const value = await store.get(name);
    if (!isSet(value)) {
      rows.push({ name, status: 'missing', connectors });
      continue;
    }
    const bad = list.map((u) => ({ u, v: checkForSink(value, u.sink) })).find((x) => !x.v.ok);
    if (bad && !bad.v.ok) rows.push({ name, status: 'unusable', reason: `${bad.v.reason} (${bad.u.connector}: ${bad.u.where})`, connectors });
    else rows.push({ name, status: 'present', connectors });
  }
  const ok = rows.every((r) => r.status === 'present');
  if (values.json) {
    io.out(jsonLine({ ok, secrets: rows }));
  } else if (rows.length === 0) {
    io.out(esc`no connector in ${dirs.registry} references a secret\n`);
  } else {
    io.out(table(['SECRET', 'STATUS', 'USED BY'], rows.map((r) => [r.name, r.status + (r.reason ? `: ${r.reason}` : ''), r.connectors.join(', ')])));
    for (const r of rows) if (r.status !== 'present') io.out(esc`fix: gatehouse secret set ${r.name}\n`);
  }
  return ok ? Exit.Ok : Exit.Failed;
}

function tryLoadRegistry(dirs: Dirs, io: Io): Registry | undefined {
  try {
    return loadRegistry(dirs.registry);
  } catch (e) {
    io.err(esc`warning: cannot load the registry (${errorMessage(e).split('\n')[0]}); showing the keychain only\n`);
    return undefined;
  }
}

/** All of stdin (a pipe or file), with one trailing newline (LF or CRLF) removed. */
async function readPiped(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_SECRET_LENGTH * 4 + 2) throw new GatehouseError('USAGE', `the value on stdin is longer than ${MAX_SECRET_LENGTH} characters`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function promptTwice(io: Io, name: string): Promise<string> {
  const first = await readHidden(io, `Value for ${name} (input hidden): `);
  const again = await readHidden(io, 'Again, to confirm: ');
  if (first !== again) throw new GatehouseError('USAGE', 'the two values differ; nothing was stored');
  return first;
}

/** Reads one line from the terminal without echo (raw mode); Ctrl-C cancels, Backspace edits. */
function readHidden(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  io.err(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      io.err('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new GatehouseError('USAGE', 'cancelled; nothing was stored'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
