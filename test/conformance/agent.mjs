// The "agent" of the conformance test: runs inside `gatehouse run` under Node 22
// and knows nothing but GATEHOUSE_MCP_URL. It runs the official conformance CLI
// against that URL: the active suite once (with a baseline of the scenarios the
// gateway does not broker) and each extra scenario given, in parallel, then prints
// one JSON line with every scenario's checks and every run's exit code.
//   node agent.mjs CLI BASELINE [EXTRA_SCENARIO...]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [cli, baseline, ...extra] = process.argv.slice(2);
const url = process.env.GATEHOUSE_MCP_URL;
if (!cli || !baseline || !url) {
  process.stderr.write('usage: GATEHOUSE_MCP_URL=... node agent.mjs CLI BASELINE [SCENARIO...]\n');
  process.exit(2);
}
// The workspace belongs to the invoking user; the sandbox has a private, writable /tmp.
const out = mkdtempSync(join(tmpdir(), 'conformance-'));

function run(name, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'server', '--url', url, '-o', join(out, name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    child.on('close', (code, signal) => resolve({ name, args, code, signal, tail: log.slice(-4000) }));
  });
}

const started = Date.now();
const runs = await Promise.all([run('suite', ['--expected-failures', baseline]), ...extra.map((s) => run(s, ['--scenario', s]))]);

// -o DIR writes DIR/server-<scenario>-<timestamp>/checks.json per scenario.
const scenarios = {};
for (const r of runs) {
  const dir = join(out, r.name);
  if (!existsSync(dir)) continue;
  for (const d of readdirSync(dir)) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(d);
    const file = join(dir, d, 'checks.json');
    if (!m || !existsSync(file)) continue;
    const checks = JSON.parse(readFileSync(file, 'utf8'));
    scenarios[m[1]] = checks.map((c) => ({ id: c.id, status: c.status, ...(c.errorMessage ? { errorMessage: c.errorMessage } : {}) }));
  }
}
process.stdout.write(JSON.stringify({ ms: Date.now() - started, runs: runs.map(({ name, code, signal, tail }) => ({ name, code, signal, tail })), scenarios }) + '\n');
