/**
 * The gateway's own log: readable and coloured on a terminal, JSON lines
 * otherwise, or appended to a file (the in-process gateway of `gatehouse run`
 * must never write into the agent's terminal). Data in a readable line stays
 * escaped: only pino-pretty's own colours reach the terminal.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runLogPath } from '../../src/cli/run.js';
import { createLogger } from '../../src/log.js';
import { tempDir } from '../helpers/gateway.js';

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString()), cb()) }), text: () => chunks.join('') };
}

const saved = process.env.GATEHOUSE_LOG_FORMAT;
afterEach(() => {
  if (saved === undefined) delete process.env.GATEHOUSE_LOG_FORMAT;
  else process.env.GATEHOUSE_LOG_FORMAT = saved;
});

describe('log format', () => {
  it('pretty: a readable, coloured line (level, message, fields), not JSON', () => {
    const s = sink();
    createLogger({ destination: s.stream, pretty: true }).warn({ connector: 'gh' }, 'upstream slow to start');
    const out = s.text();
    expect(() => JSON.parse(out) as unknown).toThrow();
    expect(out).toMatch(/WARN/);
    expect(out).toContain('upstream slow to start');
    expect(out.replace(/\x1b\[\d+m/g, '')).toContain('connector: "gh"');
    expect(out).toMatch(/\x1b\[\d+m/);
  });

  it('pretty: ESC[2J, OSC 52 and a newline an upstream put in a field or message arrive escaped; only SGR colours are raw', () => {
    const s = sink();
    createLogger({ destination: s.stream, pretty: true }).warn({ tool: 'x\x1b[2J\x1b]52;c;AAAA\x07', ['k\x1b[H']: 1 }, 'said \u009b31m\nforged line');
    const out = s.text();
    const raw = out.replace(/\x1b\[[0-9;]*m/g, '');
    expect(raw).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(out).toContain('\\x1b[2J');
    expect(out).toContain('\\x1b]52;c;AAAA\\x07');
    expect(out).toContain('said \\x9b31m\\nforged line');
  });

  it('pretty: redaction still applies', () => {
    const s = sink();
    createLogger({ destination: s.stream, pretty: true }).info({ headers: { authorization: 'Bearer sekrit-token' } }, 'request');
    expect(s.text()).not.toContain('sekrit-token');
    expect(s.text()).toContain('[REDACTED]');
  });

  it('a destination that is not a terminal gets JSON lines; GATEHOUSE_LOG_FORMAT decides either way', () => {
    const a = sink();
    createLogger({ destination: a.stream }).info('plain');
    expect(JSON.parse(a.text())).toMatchObject({ msg: 'plain', level: 30 });
    process.env.GATEHOUSE_LOG_FORMAT = 'json';
    const b = sink();
    createLogger({ destination: b.stream }).info('forced');
    expect(JSON.parse(b.text())).toMatchObject({ msg: 'forced' });
    process.env.GATEHOUSE_LOG_FORMAT = 'pretty';
    const c = sink();
    createLogger({ destination: c.stream }).info('readable');
    expect(() => JSON.parse(c.text()) as unknown).toThrow();
    expect(c.text()).toContain('readable');
  });
});

describe('the log file of gatehouse run', () => {
  it('is under the state directory, created (0600) at the first line only, JSON lines appended', () => {
    const state = tempDir();
    const file = runLogPath(state);
    expect(file).toBe(join(state, 'logs', 'run.log'));
    const log = createLogger({ file });
    expect(existsSync(file)).toBe(false);
    log.warn({ upstream: 'gh' }, 'first');
    log.info('second');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['first', 'second']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    createLogger({ file }).info('third');
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(3);
  });
});
