/**
 * The relay confines itself (chroot, capabilities, Landlock, seccomp) while
 * the launcher makes the namespaces, cgroup and mounts; the agent waits for
 * its "confined and serving" byte right before exec. So the command never
 * runs next to a relay that is not yet confined, nor without one. The relay's
 * delay and death are test hooks of the ASan build (GH_TEST_HOOKS): the
 * release binary has neither.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD, launch, scratch, type Finished, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
const RELEASE = join(BUILD, 'gatehouse-sandbox');
let s: Scratch;
let ws: string;

beforeAll(async () => {
  s = await scratch('gh-relay-ready-');
  ws = join(s.root, 'ws');
  mkdirSync(ws);
});

afterAll(async () => {
  await s.close();
});

function run(env: NodeJS.ProcessEnv, script: string): Promise<Finished> {
  return launch(s, ws, [], ['/bin/sh', '-c', script], { env, launcher: ASAN }).done;
}

describe('the command starts only once the relay is confined', () => {
  it('a relay slow to confine itself (400 ms): the command runs after its "ready", not before', async () => {
    const r = await run({ GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS: '400' }, 'echo command-started >&2');
    expect(r.code).toBe(0);
    const ready = r.stderr.indexOf('test hook: relay ready');
    const started = r.stderr.indexOf('command-started');
    expect(ready).toBeGreaterThanOrEqual(0);
    expect(started).toBeGreaterThan(ready);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });

  it('a relay that dies before it is confined: the command never runs, the launcher fails (125) saying why', async () => {
    const marker = join(ws, 'ran');
    const r = await run({ GATEHOUSE_SANDBOX_TEST_RELAY_DIE: '1' }, `touch ${marker}`);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('the relay failed to start');
    expect(existsSync(marker)).toBe(false);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });

  it('the release binary carries neither hook', () => {
    const bin = readFileSync(RELEASE).toString('latin1');
    expect(bin).not.toContain('GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS');
    expect(bin).not.toContain('GATEHOUSE_SANDBOX_TEST_RELAY_DIE');
    expect(readFileSync(ASAN).toString('latin1')).toContain('GATEHOUSE_SANDBOX_TEST_RELAY_DIE');
  });
});
