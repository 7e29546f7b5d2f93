/**
 * Text an upstream chose, printed by the built CLI (issue #24: "escape
 * sequences in an HTTP upstream's initialize error were printed raw by
 * `serve` and `connector test`: a forged 'ready' row, the terminal title").
 * An HTTP upstream answers initialize with an error whose message sets the
 * window title (OSC 0), hides text (SGR 8), erases the line and forges a
 * table row; `serve` and `connector test` show all of it escaped, on the
 * upstream's own row or line. Needs dist/ (npm run build).
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { table } from '../../src/cli/command.js';
import { runCli } from '../helpers/cli.js';
import { CLI, tempDir, writeConfig } from '../helpers/gateway.js';

/** What must never reach the admin's terminal raw (C0 but \n and \t, DEL, C1). */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const FORGED_ROW = 'innocent   http  ready   12';
const HOSTILE = `init failed\u001b]0;owned\u0007\n${FORGED_ROW}\u001b[8mhidden\u001b[0m\r\u001b[K\u009b2J`;

let upstream: Server;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  // Every request (initialize first) gets a JSON-RPC error carrying the hostile text.
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const id = (() => {
        try {
          return (JSON.parse(body) as { id?: unknown }).id ?? null;
        } catch {
          return null;
        }
      })();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message: HOSTILE } }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const root = tempDir();
  const dirs = writeConfig(root, [{ name: 'evil', kind: 'http', url: `http://127.0.0.1:${port}/mcp` }]);
  env = { HOME: root, GATEHOUSE_REGISTRY: dirs.registry, GATEHOUSE_POLICIES: dirs.policies, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await new Promise((r) => upstream?.close(r));
});

function escapedOnce(text: string): void {
  expect(text).not.toMatch(RAW);
  expect(text).toContain('init failed\\x1b]0;owned\\x07\\n');
  expect(text).toContain('\\x1b[8mhidden\\x1b[0m\\r\\x1b[K\\x9b2J');
  // The forged row never starts a line of its own.
  expect(text.split('\n').filter((l) => l.startsWith('innocent'))).toEqual([]);
}

describe('upstream text on the admin terminal', { timeout: 60_000 }, () => {
  it('HTTP upstream initialize error with OSC 0 title, SGR conceal, line erase and a forged "ready" row: serve prints it escaped on its own row', async () => {
    const ran = await runCli(['serve', '--port', '0'], {
      env,
      onStdout: (out, child) => {
        if (out.includes('then point its MCP client at')) child.kill('SIGTERM');
      },
    });
    const out = ran.stdout;
    expect(out).toContain('then point its MCP client at');
    escapedOnce(out);
    const rows = out.split('\n').filter((l) => /^evil\s/.test(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^evil\s+http\s+failed\s+-\s+see the log: MCP error -32000: init failed\\x1b/);
    // The gateway's log lines on stderr are JSON: the same text as JSON escapes.
    expect(ran.stderr).not.toMatch(RAW);
  });

  it('HTTP upstream initialize error with the same text: connector test prints one escaped FAILED line; --json keeps it exact', async () => {
    const ran = await runCli(['connector', 'test', 'evil'], { env });
    expect(ran.code).toBe(3);
    expect(ran.stdout).toBe('');
    escapedOnce(ran.stderr);
    expect(ran.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(ran.stderr).toMatch(/^evil \(http\): FAILED: /);

    const json = await runCli(['connector', 'test', 'evil', '--json'], { env });
    expect(json.stdout).not.toMatch(RAW);
    expect((JSON.parse(json.stdout) as { detail: string }).detail).toContain(HOSTILE);
  });

  it('every table cell is one escaped line: a cell cannot forge a row or carry a terminal code', () => {
    const cells = [HOSTILE, 'tab\there', 'bidi\u202eevil', 'c1\u009b31m'];
    expect(cells.length).toBeGreaterThan(0);
    const text = table(['A', 'B'], cells.map((c) => [c, c]));
    expect(text).not.toMatch(RAW);
    expect(text.trimEnd().split('\n')).toHaveLength(1 + cells.length);
    expect(text).toContain('bidi\\u202eevil');
  });
});
