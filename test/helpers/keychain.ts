/**
 * A real Secret Service for tests: a private D-Bus session bus and
 * gnome-keyring-daemon, unlocked, in a temporary HOME. Nothing touches the
 * user's own keyring or session bus.
 *
 * The bus config lists no service directories, so nothing is auto-started
 * behind the test's back (no second keyring daemon, no GUI unlock prompter:
 * a prompt fails at once, as on a headless server).
 *
 * Needs `dbus-daemon` and `gnome-keyring-daemon`: scripts/test-deps.sh.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCredentialsAsync } from '@napi-rs/keyring';
import { tempDir } from './tmp.js';

export interface Keychain {
  home: string;
  /** Environment for this process and children: HOME, DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR. */
  env: { HOME: string; DBUS_SESSION_BUS_ADDRESS: string; XDG_RUNTIME_DIR: string };
  /**
   * Points this process's environment at the keychain; returns the undo. The
   * native library's libdbus reads the bus address once per process, so a
   * test file uses one bus for its whole life (restart the keyring, not the bus).
   */
  use(): () => void;
  /** Restarts gnome-keyring-daemon on the same bus and HOME, unlocking with `password` (a wrong one leaves it locked). */
  restartKeyring(password: string): Promise<void>;
  stop(): Promise<void>;
}

export function keychainToolsPresent(): boolean {
  return ['dbus-daemon', 'gnome-keyring-daemon'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
}

function busConfig(dir: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=${dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Starts the bus and the keyring, unlocked with `password`. */
export async function startKeychain(opts: { password?: string } = {}): Promise<Keychain> {
  const home = tempDir('gatehouse-keychain-');
  const run = tempDir('gatehouse-bus-');
  mkdirSync(run, { recursive: true, mode: 0o700 });
  writeFileSync(join(run, 'bus.conf'), busConfig(run));
  const bus = spawn('dbus-daemon', [`--config-file=${join(run, 'bus.conf')}`, '--print-address=1', '--nofork'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    bus.once('error', reject);
    bus.once('exit', (code) => reject(new Error(`dbus-daemon exited (${code}) before printing its address`)));
    bus.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl > 0) resolve(out.slice(0, nl).trim());
    });
  });
  const env = { HOME: home, DBUS_SESSION_BUS_ADDRESS: address, XDG_RUNTIME_DIR: run };
  const startKeyring = (password: string) => {
    const child = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin?.end(password);
    return child;
  };
  let keyring = startKeyring(opts.password ?? 'test-password');

  const stop = async () => {
    await stopChild(keyring);
    await stopChild(bus);
    rmSync(run, { recursive: true, force: true });
  };
  const use = () => {
    const before = { HOME: process.env.HOME, DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
    Object.assign(process.env, env);
    return () => {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
  };

  // Ready once org.freedesktop.secrets answers (a search of an unused service).
  const ready = async () => {
    const undo = use();
    try {
      const end = Date.now() + 10_000;
      for (;;) {
        try {
          await findCredentialsAsync('gatehouse-fixture-ready');
          return;
        } catch (e) {
          if (Date.now() > end || keyring.exitCode !== null) {
            await stop();
            throw new Error(`the test keyring did not start: ${String(e)}`);
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    } finally {
      undo();
    }
  };
  await ready();
  const restartKeyring = async (password: string) => {
    await stopChild(keyring);
    keyring = startKeyring(password);
    await ready();
  };
  return { home, env, use, restartKeyring, stop };
}
