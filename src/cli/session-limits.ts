import { requireDuration } from '../config/duration.js';
import { GatehouseError } from '../errors.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_AGENT } from '../server/mcp-sessions.js';
import type { Command } from './command.js';

export interface SessionFlags {
  maxSessions?: string;
  maxSessionsPerAgent?: string;
  sessionIdle?: string;
}

/** `gatehouse serve` options for MCP session limits (flag, else env, else default). */
export function withSessionFlags(cmd: Command): Command {
  return cmd
    .option('--max-sessions <n>', `open MCP sessions across all agents (default ${DEFAULT_MAX_SESSIONS}; env GATEHOUSE_MAX_SESSIONS)`)
    .option(
      '--max-sessions-per-agent <n>',
      `open MCP sessions of one token agent or one sandbox (default ${DEFAULT_MAX_SESSIONS_PER_AGENT}; env GATEHOUSE_MAX_SESSIONS_PER_AGENT); past it, initialize gets HTTP 429`,
    )
    .option('--session-idle <duration>', 'close a session after this long without a request (default 30m; env GATEHOUSE_SESSION_IDLE)');
}

function count(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d{1,7}$/.test(text.trim()) || n < 1) throw new GatehouseError('USAGE', `--${flag} must be a whole number from 1 to 9999999, got ${JSON.stringify(text)}`);
  return n;
}

export function sessionLimitsFrom(values: SessionFlags, env: NodeJS.ProcessEnv): { maxSessions?: number; maxSessionsPerAgent?: number; sessionIdleMs?: number } {
  const maxSessions = count('max-sessions', values.maxSessions ?? env.GATEHOUSE_MAX_SESSIONS);
  const perAgent = count('max-sessions-per-agent', values.maxSessionsPerAgent ?? env.GATEHOUSE_MAX_SESSIONS_PER_AGENT);
  if (maxSessions !== undefined && perAgent !== undefined && perAgent > maxSessions) {
    throw new GatehouseError('USAGE', `--max-sessions-per-agent (${perAgent}) may not exceed --max-sessions (${maxSessions})`);
  }
  const idleText = values.sessionIdle ?? env.GATEHOUSE_SESSION_IDLE;
  let idle: number | undefined;
  if (idleText !== undefined) {
    idle = requireDuration(idleText, '--session-idle');
    if (idle < 1000) throw new GatehouseError('USAGE', `--session-idle must be at least 1s, got ${JSON.stringify(idleText)}`);
  }
  return {
    ...(maxSessions !== undefined ? { maxSessions } : {}),
    ...(perAgent !== undefined ? { maxSessionsPerAgent: perAgent } : {}),
    ...(idle !== undefined ? { sessionIdleMs: idle } : {}),
  };
}
