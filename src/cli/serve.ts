import { sharedDiskWarning, sharesFilesystem } from '../config/disk.js';
import { parseSize } from '../config/size.js';
import { GatehouseError } from '../errors.js';
import { startGateway } from '../runtime.js';
import { VERSION } from '../config/paths.js';
import { Exit, parse, table, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { invocation } from './invocation.js';
import { SESSION_HELP, sessionLimitsFrom, sessionOptions } from './session-limits.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

const HELP = `Usage: gatehouse serve [--host H] [--port N] [options]

Runs the gateway: one MCP endpoint (Streamable HTTP at /mcp) that exposes the
registered connectors' tools, decides every call by policy and audits it.

Options:
  --host H           interface to bind (default 127.0.0.1; env GATEHOUSE_HOST)
  --port N           TCP port (default 8931, 0 = any free port; env GATEHOUSE_PORT)
  --allowed-host H   extra Host header value accepted (host:port), repeatable
  --allowed-origin O extra browser Origin accepted, repeatable
  --json             print the start-up report as one JSON line instead of a table
  --audit-headroom SIZE  free space kept for the audit log (default 32M; env GATEHOUSE_AUDIT_HEADROOM):
                     below it new calls are refused, records of calls in flight still land
${SESSION_HELP}
${DIR_HELP}
  -h, --help         this help

Stops gracefully on SIGINT/SIGTERM: in-flight calls finish, upstreams exit.
`;

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the gateway',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {
      ...dirOptions,
      host: { type: 'string' },
      port: { type: 'string' },
      'allowed-host': { type: 'string', multiple: true },
      'allowed-origin': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'audit-headroom': { type: 'string' },
      ...sessionOptions,
    });
    if (values.help) {
      io.out(HELP);
      return Exit.Ok;
    }
    const portText = values.port ?? io.env.GATEHOUSE_PORT ?? '8931';
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GatehouseError('USAGE', `--port must be 0-65535, got ${JSON.stringify(portText)}`);
    const dirs = dirsFrom(values, io.env);
    const headroomText = values['audit-headroom'] ?? io.env.GATEHOUSE_AUDIT_HEADROOM;
    const headroomBytes = headroomText === undefined ? undefined : parseSize(headroomText);
    if (headroomText !== undefined && headroomBytes === undefined) throw new GatehouseError('USAGE', `--audit-headroom ${JSON.stringify(headroomText)}: use a size, e.g. 32M or 1G (0 turns the reserve off)`);
    const gw = await startGateway({
      dirs,
      host: values.host ?? io.env.GATEHOUSE_HOST ?? '127.0.0.1',
      port,
      allowedHosts: values['allowed-host'] ?? [],
      allowedOrigins: values['allowed-origin'] ?? [],
      ...sessionLimitsFrom(values, io.env),
      ...(headroomBytes !== undefined ? { audit: { headroomBytes } } : {}),
    });
    if (sharesFilesystem(dirs.state, process.cwd())) io.err(`warning: ${escapeText(sharedDiskWarning(dirs.state, process.cwd()))}\n`);
    // Handlers before the report: whoever reads it may signal at once, and must get a graceful stop.
    const stopped = new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        io.err(`\n${sig}: finishing in-flight calls and stopping upstreams...\n`);
        void gw.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    const report = gw.gateway.report();
    const providers = await gw.inference.report();
    const cli = invocation();
    if (values.json) {
      io.out(jsonLine({ url: gw.url, version: VERSION, dirs, connectors: report, providers }));
    } else {
      const rows = report.map((r) => {
        const st = r.status;
        const fix =
          st.state === 'not-ready' ? st.fix.replace(/\bgatehouse /g, `${cli} `) : st.state === 'failed' ? `see the log: ${st.reason}` : '';
        return [r.name, r.kind, st.state, st.state === 'ready' ? String(r.tools) : '-', fix];
      });
      // Model providers: the TOOLS column says which models; a provider whose key is missing says how to set it.
      for (const p of providers) rows.push([p.name, `inference (${p.api})`, p.state, p.models.join(' '), p.fix?.replace(/\bgatehouse /g, `${cli} `) ?? '']);
      io.out(
        esc`Gatehouse ${VERSION} serving MCP at ${gw.url}\n` +
          esc`  registry ${dirs.registry}\n  policies ${dirs.policies}\n  state    ${dirs.state}\n\n` +
          table(['CONNECTOR', 'KIND', 'STATUS', 'TOOLS', 'FIX'], rows) +
          `\nGive an agent a token (8 hours):\n  ${cli} token mint --agent laptop-claude --ttl 8h\n` +
          `then point its MCP client at ${gw.url} with "Authorization: Bearer <token>".\n` +
          (providers.length > 0 ? `Model providers: ${gw.url.replace(/\/mcp$/, '')}/llm/<provider> (the agent sends its token as the API key; gatehouse run sets this up inside the sandbox).\n` : ''),
      );
    }
    await stopped;
    return Exit.Ok;
  },
};

