/**
 * `when:` expressions in CEL (https://github.com/google/cel-spec), run by
 * @marcbachmann/cel-js: a parser and tree-walking evaluator, no eval or
 * Function, non-Turing-complete, with parse-time size limits.
 *
 * Variables: agent, connector, tool, upstreamTool (strings), args (map),
 * time (timestamp; `time.getHours()` is UTC unless a zone is given).
 * Annotations are left out on purpose: they are untrusted hints and may
 * only make a decision stricter, which `match.annotations` enforces.
 */
import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import type { CallContext, CompiledWhen } from './types.js';

const env = new Environment({
  limits: { maxAstNodes: 1_000, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
})
  .registerVariable('agent', 'string')
  .registerVariable('connector', 'string')
  .registerVariable('tool', 'string')
  .registerVariable('upstreamTool', 'string')
  .registerVariable('args', 'map')
  .registerVariable('time', 'google.protobuf.Timestamp');

/** Functions that would run a backtracking RegExp on agent input (CEL's `matches` uses JS RegExp here). */
const FORBIDDEN_CALLS = new Set(['matches']);

function firstForbiddenCall(node: ASTNode): string | undefined {
  if (node.op === 'call' && FORBIDDEN_CALLS.has(node.args[0])) return node.args[0];
  if (node.op === 'rcall' && FORBIDDEN_CALLS.has(node.args[0])) return node.args[0];
  const kids: unknown = node.args;
  const visit = (x: unknown): string | undefined => {
    if (Array.isArray(x)) {
      for (const y of x) {
        const r = visit(y);
        if (r !== undefined) return r;
      }
      return undefined;
    }
    if (typeof x === 'object' && x !== null && 'op' in x && 'args' in x) return firstForbiddenCall(x as ASTNode);
    return undefined;
  };
  return visit(kids);
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}

/** Compiles a `when` expression once; throws Error with a one-line message on a syntax or type error. */
export function compileWhen(source: string): CompiledWhen {
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (e) {
    throw new Error(`CEL syntax: ${firstLine(e)}`);
  }
  const check = program.check();
  if (!check.valid) throw new Error(`CEL: ${firstLine(check.error)}`);
  if (check.type !== 'bool' && check.type !== 'dyn') throw new Error(`CEL: expression must be a bool, it is ${check.type ?? 'unknown'}`);
  const forbidden = firstForbiddenCall(program.ast);
  if (forbidden !== undefined) {
    throw new Error(`CEL: ${forbidden}() is not allowed (backtracking regex on agent input); use an args "regex" matcher (RE2)`);
  }
  return {
    source,
    evaluate(ctx: CallContext): boolean {
      const out: unknown = program({
        agent: ctx.agent,
        connector: ctx.connector,
        tool: ctx.tool,
        upstreamTool: ctx.upstreamTool,
        args: ctx.args,
        time: ctx.time,
      });
      if (typeof out !== 'boolean') throw new Error(`expression gave ${typeof out}, not a bool`);
      return out;
    },
  };
}

export { firstLine as celErrorLine };
