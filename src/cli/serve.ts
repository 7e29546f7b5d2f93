import { resolve } from 'node:path';
import { sharedDiskWarning, sharesFilesystem } from '../config/disk.js';
import { parseSize } from '../config/size.js';
import { Exit, GatehouseError } from '../errors.js';
import { loginRefusal } from '../console/login-guard.js';
import { reachableNote } from '../server/listen.js';
import { parseListenAddress } from '../server/metrics-route.js';
import { VERSION, resolveDirs, type Dirs } from '../config/paths.js';
import { collect, dirsFrom, handle, subcommand, table, type CommandModule } from './command.js';
import { invocation } from './invocation.js';
import { serveNotices } from './serve-notices.js';
import { withSandbox } from '../registry/confinement.js';
import { sessionLimitsFrom, withSessionFlags, type SessionFlags } from './session-limits.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

interface ServeOptions extends SessionFlags {
  host?: string;
  port?: string;
  allowedHost?: string[];
  allowedOrigin?: string[];
  json?: boolean;
  auditHeadroom?: string;
  consoleInsecure?: boolean;
  siem?: string;
  metricsListen?: string;
}

export const serveCommand: CommandModule = (program, io) => {
  const serve = subcommand(program, 'serve', 'run the gateway')
    .description(
      "Runs the gateway: one MCP endpoint (Streamable HTTP at /mcp) that exposes the registered connectors' tools, decides every call by policy and audits it.",
    )
    .option('--host <host>', 'interface to bind (default 127.0.0.1; env GATEHOUSE_HOST)')
    .option('--port <n>', 'TCP port (default 8931, 0 = any free port; env GATEHOUSE_PORT)')
    .option('--allowed-host <host>', 'extra Host name accepted: NAME (on the listening port) or NAME:PORT, repeatable', collect)
    .option('--allowed-origin <origin>', 'extra browser Origin accepted, repeatable', collect)
    .option('--json', 'print the start-up report as one JSON line instead of a table')
    .option('--console-insecure', 'issue web console logins even when --host is not loopback (plain HTTP: the login link and the session cross the network readable)')
    .option('--metrics-listen <host:port>', 'also serve Prometheus /metrics here, without a token (env GATEHOUSE_METRICS_LISTEN); on the MCP port /metrics needs an admin token')
    .option('--siem <file>', 'ship the audit log to a SIEM (syslog, Splunk HEC, webhook, OTLP logs) as this file says (env GATEHOUSE_SIEM; README "SIEM shipping")')
    .option(
      '--audit-headroom <size>',
      'free space kept for the audit log (default 32M; env GATEHOUSE_AUDIT_HEADROOM): below it new calls are refused, records of calls in flight still land',
    );
  withSessionFlags(serve).addHelpText(
    'after',
    '\nStops gracefully on SIGINT/SIGTERM: in-flight calls finish, upstreams exit.\nThe gateway log goes to stderr: readable and coloured on a terminal, JSON lines otherwise (GATEHOUSE_LOG_FORMAT=json|pretty, GATEHOUSE_LOG_LEVEL).',
  );
  handle<ServeOptions>(serve, async (o) => {
    const portText = o.port ?? io.env.GATEHOUSE_PORT ?? '8931';
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GatehouseError('USAGE', `--port must be 0-65535, got ${JSON.stringify(portText)}`);
    const dirs = dirsFrom(o, io.env);
    const headroomText = o.auditHeadroom ?? io.env.GATEHOUSE_AUDIT_HEADROOM;
    const headroomBytes = headroomText === undefined ? undefined : parseSize(headroomText);
    if (headroomText !== undefined && headroomBytes === undefined) throw new GatehouseError('USAGE', `--audit-headroom ${JSON.stringify(headroomText)}: use a size, e.g. 32M or 1G (0 turns the reserve off)`);
    const metricsListenText = o.metricsListen ?? io.env.GATEHOUSE_METRICS_LISTEN;
    const metricsListen = metricsListenText === undefined || metricsListenText === '' ? undefined : parseListenAddress(metricsListenText);
    const notices = serveNotices((line) => io.err(line), invocation(), nonDefaultDirFlags(dirs, io.env));
    // Loaded here, not at the top: every other command (and --help) starts without the gateway's modules.
    const { startGateway } = await import('../app/gateway.js');
    const gw = await startGateway({
      dirs,
      onApprovalEvent: notices.onApprovalEvent,
      onUpstreamsStarting: notices.onUpstreamsStarting,
      host: o.host ?? io.env.GATEHOUSE_HOST ?? '127.0.0.1',
      port,
      allowedHosts: o.allowedHost ?? [],
      allowedOrigins: o.allowedOrigin ?? [],
      ...(o.consoleInsecure === true ? { consoleInsecure: true } : {}),
      ...sessionLimitsFrom(o, io.env),
      ...(headroomBytes !== undefined ? { audit: { headroomBytes } } : {}),
      ...siemFile(o.siem ?? io.env.GATEHOUSE_SIEM),
      ...(metricsListen ? { metricsListen } : {}),
    });
    // The console's login links name gw.url's host: beyond loopback they would cross the network in plain HTTP.
    if (gw.url !== '' && loginRefusal(gw.url, false) !== undefined) io.err(`${escapeText(consoleNotice(gw.host, o.consoleInsecure === true))}\n`);
    if (sharesFilesystem(dirs.state, process.cwd())) io.err(`warning: ${escapeText(sharedDiskWarning(dirs.state, process.cwd()))}\n`);
    // Handlers before the report: whoever reads it may signal at once, and must get a graceful stop.
    const stopped = new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        io.err(`\n${sig}: finishing in-flight calls and stopping upstreams...\n`);
        notices.close();
        void gw.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    const report = gw.gateway.report();
    const providers = await gw.inference.report();
    const cli = invocation();
    if (o.json) {
      io.out(jsonLine({ url: gw.url, urls: gw.urls, version: VERSION, dirs, connectors: withSandbox(report, gw.gateway.opts.registry.connectors), providers, ...telemetryReport(gw) }));
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
          (gw.metricsUrl !== undefined ? esc`  metrics  ${gw.metricsUrl} (Prometheus, no token)\n` : '') +
          (gw.tracing !== undefined ? esc`  traces   OTLP ${gw.tracing.config.protocol} to ${gw.tracing.config.endpoint}\n` : '') +
          escapeText(reachableNote(gw.host, gw.urls), { keepNewlines: true }) +
          esc`  registry ${dirs.registry}\n  policies ${dirs.policies}\n  state    ${dirs.state}\n\n` +
          table(['CONNECTOR', 'KIND', 'STATUS', 'TOOLS', 'FIX'], rows) +
          // The token must come from this gateway's state directory: the command says which when it is not the default.
          `\nGive an agent a token (8 hours):\n  ${escapeText(`${cli} token mint --agent laptop-claude --ttl 8h${nonDefaultDirFlags(dirs, io.env)}`)}\n` +
          `then point its MCP client at ${gw.url} with "Authorization: Bearer <token>".\n` +
          (providers.length > 0 ? `Model providers: ${gw.url.replace(/\/mcp$/, '')}/llm/<provider> (the agent sends its token as the API key; gatehouse run sets this up inside the sandbox).\n` : ''),
      );
    }
    await stopped;
    return Exit.Ok;
  });
};

/** " --state DIR" (and --registry, --policies) for each directory that a command run elsewhere, without GATEHOUSE_* set, would not pick. */
export function nonDefaultDirFlags(dirs: Dirs, env: NodeJS.ProcessEnv): string {
  const plain = Object.fromEntries(Object.entries(env).filter(([k]) => !['GATEHOUSE_REGISTRY', 'GATEHOUSE_POLICIES', 'GATEHOUSE_STATE'].includes(k)));
  const defaults = resolveDirs({}, plain);
  return (['registry', 'policies', 'state'] as const)
    .filter((k) => dirs[k] !== defaults[k])
    .map((k) => ` --${k} ${shellWord(dirs[k])}`)
    .join('');
}

/** Where metrics and traces go, for the JSON report. */
function telemetryReport(gw: { metricsUrl?: string; tracing: { config: { protocol: string; endpoint: string } } | undefined }): Record<string, unknown> {
  return {
    ...(gw.metricsUrl !== undefined ? { metrics: gw.metricsUrl } : {}),
    ...(gw.tracing !== undefined ? { traces: { protocol: gw.tracing.config.protocol, endpoint: gw.tracing.config.endpoint } } : {}),
  };
}

/** The SIEM file, made absolute (its errors name it as given here). */
function siemFile(file: string | undefined): { siem?: string } {
  return file === undefined || file === '' ? {} : { siem: resolve(file) };
}

/** A path as one shell word: as is when it needs no quoting, else in single quotes. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What serve says about the web console on a listener beyond loopback (plain HTTP): off, or on at the admin's risk. */
export function consoleNotice(host: string, insecure: boolean): string {
  return insecure
    ? `warning: --console-insecure: web console logins are issued for ${host} over plain HTTP; anyone who can see the traffic can take over a console session and approve calls. Prefer 127.0.0.1 and an SSH tunnel (ssh -L)`
    : `note: the web console issues no logins on ${host} (plain HTTP beyond loopback); serve on 127.0.0.1 and use an SSH tunnel (ssh -L), or pass --console-insecure`;
}
