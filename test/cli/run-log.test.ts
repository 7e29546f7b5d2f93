/**
 * `gatehouse run` with its gateway in-process: the gateway's log goes to
 * <state>/logs/run.log, never into the agent's stderr (which the user reads
 * as the agent's own output); the agent's flags after its command are its own.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAUNCHER, gatehouseRun, scratch, type Scratch } from '../helpers/sandbox-launch.js';
import { CLI } from '../helpers/gateway.js';

describe.runIf(existsSync(CLI) && existsSync(LAUNCHER))('gatehouse run: the in-process gateway logs to a file', { timeout: 60_000 }, () => {
  let s: Scratch;
  beforeAll(async () => {
    s = await scratch('gh-run-log-');
  });
  afterAll(async () => s?.close());

  it('the agent stderr holds only what the agent wrote; the gateway log is in <state>/logs/run.log', async () => {
    const ws = join(s.root, 'ws');
    mkdirSync(ws);
    const r = await gatehouseRun(s, ['--workspace', ws], ['/bin/sh', '-c', 'echo agent-out; echo agent-err >&2', 'sh', '--state', 'not-ours'], {
      // Debug: the gateway then has something to say on every run.
      GATEHOUSE_LOG_LEVEL: 'debug',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('agent-out\n');
    // Besides run's own notices ("gatehouse run: warning: ..."), only the agent's line.
    expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('gatehouse run: '))).toEqual(['agent-err']);
    const base = readdirSync(s.root).find((d) => d.startsWith('cli-'));
    const log = join(s.root, base ?? '', 'state', 'logs', 'run.log');
    expect(existsSync(log)).toBe(true);
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty('level');
  });
});
