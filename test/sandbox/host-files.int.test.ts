/**
 * Host-side code never trusts what the agent can write (issue #12, item 1;
 * ARCHITECTURE.md invariant 7). `gatehouse run` touches exactly one file in
 * the workspace: its own `.mcp.json`. Each test is an attack an agent can
 * prepare in one run (the workspace outlives it) against the next run, which
 * may be started by root. Real CLI, real launcher, real in-process gateway.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafeDir } from '../../src/sandbox/safe-dir.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');

let base: string;
let state: string;
let registry: string;
let outside: string;

function run(workspace: string, cmd: string[], during?: () => void): Promise<Ran> {
  const args = ['run', '--agent', 'planter', '--workspace', workspace, '--registry', registry, '--policies', join(ROOT, 'policies'), '--', ...cmd];
  return runCli(args, {
    env: { HOME: base, GATEHOUSE_STATE: state },
    onStdout: (stdout) => {
      if (during && stdout.includes('ready')) {
        const f = during;
        during = undefined;
        f();
      }
    },
  });
}

function freshWorkspace(name: string): string {
  const ws = join(base, name);
  mkdirSync(ws);
  return ws;
}

beforeAll(() => {
  base = tempDir('gh-hostfiles-');
  state = join(base, 'state');
  registry = join(base, 'registry');
  outside = join(base, 'outside');
  mkdirSync(registry);
  mkdirSync(outside);
  // No connector is needed: these tests are about files, not tools.
  writeFileSync(join(registry, 'README.md'), 'empty registry\n');
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('gatehouse run never follows what the agent left in its workspace', () => {
  it('agent plants a dangling .mcp.json symlink: the next run does not create its target', async () => {
    const ws = freshWorkspace('dangling');
    const target = join(outside, 'ld.so.preload');
    symlinkSync(target, join(ws, '.mcp.json'));
    const r = await run(ws, ['/bin/true']);
    expect(existsSync(target)).toBe(false);
    expect(readlinkSync(join(ws, '.mcp.json'))).toBe(target);
    expect(r.stderr).toMatch(/\.mcp\.json is a symlink; left alone/);
    // .mcp.json names commands the user's tools run later: a planted link refuses the launch (fail closed).
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/\.mcp\.json.*symlink/);
  });

  it('agent plants a .mcp.json symlink to a host file: the run neither writes nor removes the file', async () => {
    const ws = freshWorkspace('existing');
    const target = join(outside, 'precious.conf');
    writeFileSync(target, 'precious\n');
    symlinkSync(target, join(ws, '.mcp.json'));
    const r = await run(ws, ['/bin/true']);
    expect(r.code).toBe(125);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(lstatSync(join(ws, '.mcp.json')).isSymbolicLink()).toBe(true);
  });

  it('agent swaps the host-written .mcp.json for a symlink during the run: refused inside, nothing followed after', async () => {
    const ws = freshWorkspace('swap-inside');
    const target = join(outside, 'swapped-target');
    const r = await run(ws, ['/bin/sh', '-c', `rm -f .mcp.json; ln -sf ${target} .mcp.json; echo pwned > .mcp.json; mv .mcp.json moved.json; echo ok > control.txt`]);
    // The control: the agent can write its workspace, just not the host's file.
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, 'control.txt'), 'utf8')).toBe('ok\n');
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(ws, 'moved.json'))).toBe(false);
    // Ours, unchanged, so removed again.
    expect(existsSync(join(ws, '.mcp.json'))).toBe(false);
  });

  it('someone replaces .mcp.json while the agent runs: cleanup removes only the file the host wrote', async () => {
    const ws = freshWorkspace('swap-outside');
    const r = await run(ws, ['/bin/sh', '-c', 'echo ready; sleep 2'], () => {
      // Outside the sandbox's mount namespace the file is an ordinary name: replace it.
      renameSync(join(ws, '.mcp.json'), join(ws, 'host-written.json'));
      writeFileSync(join(ws, '.mcp.json'), 'not ours\n');
    });
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, '.mcp.json'), 'utf8')).toBe('not ours\n');
  });

  it('an existing regular .mcp.json of the user is kept as it is', async () => {
    const ws = freshWorkspace('users-own');
    writeFileSync(join(ws, '.mcp.json'), '{"mcpServers":{}}\n');
    const r = await run(ws, ['/bin/true']);
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, '.mcp.json'), 'utf8')).toBe('{"mcpServers":{}}\n');
  });
});

describe('SafeDir: host-side operations in an agent-writable directory', () => {
  it('agent swaps a workspace component for a symlink after it was resolved: opening it is refused', () => {
    const real = join(base, 'sd-real');
    mkdirSync(join(real, 'sub'), { recursive: true });
    const swapped = join(base, 'sd-swapped');
    mkdirSync(swapped);
    // What was canonical a moment ago is now a link to a host directory.
    symlinkSync(outside, join(swapped, 'sub'));
    expect(() => SafeDir.open(join(swapped, 'sub'))).toThrow(/component "sub" is a symlink or not a directory/);
    const d = SafeDir.open(join(real, 'sub'));
    d.close();
  });

  it('agent leaves a dangling link under the name the host wants: createExclusive does not follow it', () => {
    const dir = join(base, 'sd-excl');
    mkdirSync(dir);
    const target = join(outside, 'sd-target');
    symlinkSync(target, join(dir, 'config.json'));
    const d = SafeDir.open(dir);
    try {
      expect(d.createExclusive('config.json', 'x')).toBeUndefined();
      expect(existsSync(target)).toBe(false);
      expect(() => d.createExclusive('../escape.json', 'x')).toThrow(/not a plain file name/);
    } finally {
      d.close();
    }
  });

  it('agent replaces the host file with a symlink: removeIfSame leaves the link', () => {
    const dir = join(base, 'sd-remove');
    mkdirSync(dir);
    const d = SafeDir.open(dir);
    try {
      const ours = d.createExclusive('f.json', 'ours');
      expect(ours).toBeDefined();
      rmSync(join(dir, 'f.json'));
      symlinkSync(join(outside, 'whatever'), join(dir, 'f.json'));
      expect(d.removeIfSame('f.json', ours!)).toBe(false);
      expect(lstatSync(join(dir, 'f.json')).isSymbolicLink()).toBe(true);
    } finally {
      d.close();
    }
  });
});
