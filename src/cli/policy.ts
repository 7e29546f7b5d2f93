/** `gatehouse policy check|explain|test`: offline tools over the policy files (no running gateway needed). */
import { relative, resolve } from 'node:path';
import { ConfigError, formatIssue } from '../config/load-yaml.js';
import { GatehouseError, errorMessage } from '../errors.js';
import { explain } from '../policy/evaluate.js';
import { formatDuration } from '../config/duration.js';
import { loadPolicies } from '../policy/load.js';
import { runPolicyTests, splitToolName } from '../policy/test-cases.js';
import { ANNOTATION_KEYS, type CallContext, type Decision, type Policy, type ToolAnnotations } from '../policy/types.js';
import { Exit } from '../errors.js';
import { dirsFrom, handle, subcommand, table, type CommandModule, type DirFlags, type Io } from './command.js';
import { explainedRulesTable } from './explained-rules.js';
import { esc, escapeText, jsonText } from '../terminal.js';
import { parseAuthority } from '../egress/target.js';
import { egressQuery, reportEgress, type EgressExplainFlags } from './policy-explain-egress.js';

const TEST_HELP = `
FILE:
  cases:
    - name: coders may file issues in our repos
      agent: coder-1
      tool: github__create_issue      # connector = part before "__" unless given
      args: { owner: acme, repo: web, title: Bug }
      annotations: { readOnlyHint: false }   # optional
      time: "2025-01-06T09:00:00Z"           # optional, default now
      expect: allow                          # allow | deny | ask
      expectRule: issues-only-in-our-repos   # optional; null = the default decided
    - name: coders may fetch npm packages
      agent: coder-1                         # or connector: NAME (who opens the connection)
      egress: registry.npmjs.org:443         # instead of tool: a CONNECT tunnel, host:port
      method: GET                            # optional, with path: a plain-HTTP request
      path: /simple/requests/
      expect: allow                          # allow | deny | ask

Exit: 0 all cases pass, 1 a case failed, 2 usage or invalid policy / cases file.`;

type ExplainOptions = EgressExplainFlags;

/** The policy folder as every command picks it: --policies, GATEHOUSE_POLICIES, ./policies, else the shipped one (as `serve` does). */
function policyDir(o: DirFlags, io: Io): string {
  return dirsFrom(o, io.env).policies;
}

function json(io: Io, v: unknown): void {
  io.out(`${jsonText(v, 2)}\n`);
}

function parseJsonObject(flag: string, text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new GatehouseError('USAGE', `${flag}: not valid JSON (${errorMessage(e)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GatehouseError('USAGE', `${flag}: must be a JSON object`);
  return v as Record<string, unknown>;
}

function parseAnnotations(text: string | undefined): ToolAnnotations | undefined {
  if (text === undefined) return undefined;
  const o = parseJsonObject('--annotations', text);
  const out: ToolAnnotations = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(ANNOTATION_KEYS as readonly string[]).includes(k)) throw new GatehouseError('USAGE', `--annotations: unknown key "${k}" (known: ${ANNOTATION_KEYS.join(', ')})`);
    if (typeof v !== 'boolean') throw new GatehouseError('USAGE', `--annotations: ${k} must be true or false`);
    out[k as keyof ToolAnnotations] = v;
  }
  return out;
}

function describeDecision(d: Decision, policy: Policy, dir: string): string[] {
  const rule = d.ruleId === null ? undefined : policy.rules.find((r) => r.id === d.ruleId);
  const where = rule === undefined ? 'the policy default' : `rule "${rule.id}" (${relative(dir, rule.file)}:${rule.line})`;
  const lines = [`Decision: ${d.effect.toUpperCase()} by ${escapeText(where)}`, esc`Message:  ${d.message}`];
  if (d.limit !== undefined) lines.push(`Limit:    ${d.limit.capacity} per ${formatDuration(d.limit.perMs)} per agent`);
  if (d.ask !== undefined) {
    const g = d.ask.grant;
    lines.push(`Ask:      timeout ${formatDuration(d.ask.timeoutMs)}${g === undefined ? ', no grants' : `, grants up to ${formatDuration(g.ttlMs)} / ${g.maxUses} uses`}`);
  }
  return lines;
}

/** Loads the policy for explain/test: an invalid policy is a usage-level failure (exit 2). */
function loadOrReport(dir: string, io: Io): Policy | undefined {
  try {
    return loadPolicies(dir);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(esc`Invalid policy in ${dir}:` + `\n${escapeText(e.message, { keepNewlines: true })}\n`);
      return undefined;
    }
    throw e;
  }
}

async function check(values: DirFlags & { json?: boolean }, io: Io): Promise<number> {
  const dir = policyDir(values, io);
  let policy: Policy;
  try {
    policy = loadPolicies(dir);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (values.json === true) json(io, { ok: false, dir, issues: e.issues });
    else io.out(esc`INVALID ${dir}` + `\n${e.issues.map((i) => `  ${escapeText(formatIssue(i))}`).join('\n')}\n`);
    return Exit.Failed;
  }
  const files = policy.files.map((f) => ({ file: f, rules: policy.rules.filter((r) => r.file === f).length }));
  if (values.json === true) {
    json(io, { ok: true, dir, default: policy.default, rules: policy.rules.length, files, digest: policy.digest, warnings: policy.warnings });
    return Exit.Ok;
  }
  io.out(esc`OK ${dir}: ${policy.rules.length} rules from ${files.length} files, default ${policy.default}\n`);
  if (files.length > 0) io.out(table(['FILE', 'RULES'], files.map((f) => [relative(dir, f.file), String(f.rules)])));
  for (const w of policy.warnings) io.out(esc`warning: ${w}\n`);
  return Exit.Ok;
}

async function explainCmd(values: DirFlags & ExplainOptions, io: Io): Promise<number> {
  if (values.egress !== undefined || values.method !== undefined || values.path !== undefined) {
    const q = egressQuery(values);
    const dir = policyDir(values, io);
    const policy = loadOrReport(dir, io);
    return policy === undefined ? Exit.Usage : reportEgress(io, policy, dir, q, values);
  }
  if (values.agent === undefined || values.tool === undefined) {
    throw new GatehouseError('USAGE', 'explain needs --agent and --tool (a tool call), or --agent or --connector and --egress HOST:PORT (an egress connection)');
  }
  const time = values.time === undefined ? new Date() : new Date(values.time);
  if (Number.isNaN(time.getTime())) throw new GatehouseError('USAGE', `--time: "${values.time ?? ''}" is not a date (use ISO 8601, e.g. 2025-01-06T09:00:00Z)`);
  const split = splitToolName(values.tool);
  const ctx: CallContext = {
    agent: values.agent,
    connector: values.connector ?? split.connector,
    tool: values.tool,
    upstreamTool: values.upstreamTool ?? split.upstreamTool,
    args: parseJsonObject('--args', values.args),
    time,
  };
  const annotations = parseAnnotations(values.annotations);
  if (annotations !== undefined) ctx.annotations = annotations;

  const dir = policyDir(values, io);
  const policy = loadOrReport(dir, io);
  if (policy === undefined) return Exit.Usage;
  const ex = explain(policy, ctx);
  const code = ex.decision.effect === 'deny' ? Exit.Failed : Exit.Ok;
  // "Nearby" rules are those about this tool (or about any tool); --all lists every rule.
  const nearby = ex.rules.filter((r, i) => values.all === true || r.matched || (policy.rules[i]?.tool?.test(ctx.tool) ?? true));
  if (values.json === true) {
    json(io, { call: { ...ctx, time: ctx.time.toISOString() }, decision: ex.decision, rules: nearby });
    return code;
  }
  io.out(`${describeDecision(ex.decision, policy, dir).join('\n')}\n\n`);
  if (nearby.length === 0) io.out('No rule is about this tool.\n');
  else {
    io.out(explainedRulesTable(nearby, dir));
  }
  const hidden = ex.rules.length - nearby.length;
  if (hidden > 0) io.out(`(${hidden} rules about other tools not shown; --all shows them)\n`);
  return code;
}

async function test(casesFile: string, values: DirFlags & { json?: boolean }, io: Io): Promise<number> {
  const dir = policyDir(values, io);
  const policy = loadOrReport(dir, io);
  if (policy === undefined) return Exit.Usage;
  const file = resolve(casesFile);
  let report;
  try {
    report = runPolicyTests(policy, file, parseAuthority);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(`Invalid cases file:\n${escapeText(e.message, { keepNewlines: true })}\n`);
      return Exit.Usage;
    }
    throw e;
  }
  const code = report.failed === 0 ? Exit.Ok : Exit.Failed;
  if (values.json === true) {
    json(io, report);
    return code;
  }
  io.out(
    table(
      ['RESULT', 'CASE', 'LINE', 'EXPECTED', 'GOT', 'RULE', 'PROBLEM'],
      report.results.map((r) => [r.ok ? 'pass' : 'FAIL', r.name, String(r.line), r.expect, r.decision.effect, r.decision.ruleId ?? '(default)', r.problem]),
    ),
  );
  io.out(`${report.passed} passed, ${report.failed} failed\n`);
  return code;
}

export const policyCommand: CommandModule = (program, io) => {
  const policy = subcommand(program, 'policy', 'check, explain and test the policy files').description(
    'Offline tools over the policy files (no running gateway needed). The folder: --policies, GATEHOUSE_POLICIES, ./policies, else the shipped one.',
  );

  const checkCmd = subcommand(policy, 'check', 'validate every policy file')
    .description('Validates all top-level *.yaml / *.yml files in the policy folder (and what they extend), as the gateway would load them.')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExit: 0 valid, 1 invalid (every problem is listed as file:line:col: key: message), 2 usage.');
  handle<{ json?: boolean }>(checkCmd, async (o) => check(o, io));

  const explainSub = subcommand(policy, 'explain', 'show the decision for one call or egress connection and why each rule did or did not match')
    .description(
      'Prints the decision for one tool call (--tool) or one egress connection (--egress), the deciding rule and why each nearby rule ' +
        '(the rules about this tool, or the egress rules) did or did not match. For --egress also what the proxy does about the address: ' +
        'a rule naming the host exactly may reach loopback and private addresses, a glob rule may not.',
    )
    .option('--agent <name>', 'agent identity')
    .option('--tool <name>', 'exposed tool name, e.g. github__create_issue')
    .option('--connector <name>', 'connector (default: the part of the tool before "__"); with --egress: the connector opening the connection, instead of --agent')
    .option('--egress <host:port>', 'explain an egress connection instead of a tool call, e.g. registry.npmjs.org:443 (a CONNECT tunnel)')
    .option('--method <method>', 'with --egress and --path: a plain-HTTP request, e.g. GET')
    .option('--path <path>', 'with --egress and --method: the request path, e.g. /simple/requests/')
    .option('--upstream-tool <name>', 'upstream tool name (default: the part of the tool after "__")')
    .option('--args <json>', "the call's arguments, a JSON object (default {})")
    .option('--annotations <json>', `tool annotations, e.g. '{"readOnlyHint":true}'`)
    .option('--time <iso>', "the call's time (default: now), e.g. 2025-01-06T09:00:00Z")
    .option('--all', 'list every rule, not only those about this tool (with --egress: not only the egress rules)')
    .option('--json', 'print the explanation as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  gatehouse policy explain --agent coder-1 --tool github__create_issue --args \'{"owner":"acme"}\'\n' +
        '  gatehouse policy explain --agent coder-1 --egress registry.npmjs.org:443\n' +
        '  gatehouse policy explain --connector github --egress api.github.com:443\n' +
        '\nExit: 0 allow or ask, 1 deny (for --egress also an allowed address the proxy refuses), 2 usage or invalid policy.',
    );
  handle<ExplainOptions>(explainSub, async (o) => explainCmd(o, io));

  const testSub = subcommand(policy, 'test <file>', 'run table-driven policy test cases from a YAML file')
    .option('--json', 'print the results as JSON')
    .addHelpText('after', TEST_HELP);
  handle<{ json?: boolean }>(testSub, async (o, [file]) => test(file ?? '', o, io));
};
