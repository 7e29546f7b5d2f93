/**
 * The agent side of the relay benchmark: run inside the launcher (through the
 * relay) or outside (on the session's unix socket, or TCP with a token).
 *   node dist/bench/sandbox-client.js URL TOOL CALLS [--socket PATH] [--token T]
 * prints one JSON line {p50, p99, n} (milliseconds), after a warm-up.
 */
import { openSession, sequentialLatencies } from './lib/mcp-client.js';
import { quantile } from './lib/stats.js';

const [url, tool, callsText, ...rest] = process.argv.slice(2);
if (!url || !tool || !callsText) throw new Error('usage: sandbox-client.js URL TOOL CALLS [--socket PATH] [--token T]');
const flag = (name: string) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const socketPath = flag('--socket');
const token = flag('--token');
const session = await openSession(
  { url, ...(socketPath ? { socketPath } : {}), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) },
  1,
);
await sequentialLatencies(session, tool, 60);
const xs = await sequentialLatencies(session, tool, Number(callsText));
await session.close();
process.stdout.write(JSON.stringify({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), n: xs.length }) + '\n');
