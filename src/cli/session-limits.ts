import { GatehouseError } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_AGENT } from '../server/sessions.js';

/** `gatehouse serve` options for MCP session limits (flag, else env, else default). */
export const sessionOptions = {
  'max-sessions': { type: 'string' },
  'max-sessions-per-agent': { type: 'string' },
  'session-idle': { type: 'string' },
} as const;

export const SESSION_HELP = `  --max-sessions N   open MCP sessions across all agents (default ${DEFAULT_MAX_SESSIONS}; env GATEHOUSE_MAX_SESSIONS)
  --max-sessions-per-agent N
                     open MCP sessions of one token agent or one sandbox (default ${DEFAULT_MAX_SESSIONS_PER_AGENT};
                     env GATEHOUSE_MAX_SESSIONS_PER_AGENT); past it, initialize gets HTTP 429
  --session-idle DUR close a session after this long without a request (default 30m; env GATEHOUSE_SESSION_IDLE)`;

function count(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d{1,7}$/.test(text.trim()) || n < 1) throw new GatehouseError('USAGE', `--${flag} must be a whole number from 1 to 9999999, got ${JSON.stringify(text)}`);
  return n;
}

export function sessionLimitsFrom(
  values: { 'max-sessions'?: string | undefined; 'max-sessions-per-agent'?: string | undefined; 'session-idle'?: string | undefined },
  env: NodeJS.ProcessEnv,
): { maxSessions?: number; maxSessionsPerAgent?: number; sessionIdleMs?: number } {
  const maxSessions = count('max-sessions', values['max-sessions'] ?? env.GATEHOUSE_MAX_SESSIONS);
  const perAgent = count('max-sessions-per-agent', values['max-sessions-per-agent'] ?? env.GATEHOUSE_MAX_SESSIONS_PER_AGENT);
  if (maxSessions !== undefined && perAgent !== undefined && perAgent > maxSessions) {
    throw new GatehouseError('USAGE', `--max-sessions-per-agent (${perAgent}) may not exceed --max-sessions (${maxSessions})`);
  }
  const idleText = values['session-idle'] ?? env.GATEHOUSE_SESSION_IDLE;
  let idle: number | undefined;
  if (idleText !== undefined) {
    idle = parseDuration(idleText);
    if (idle === undefined || idle < 1000) throw new GatehouseError('USAGE', `--session-idle must be a duration of at least 1s, e.g. 10m, got ${JSON.stringify(idleText)}`);
  }
  return {
    ...(maxSessions !== undefined ? { maxSessions } : {}),
    ...(perAgent !== undefined ? { maxSessionsPerAgent: perAgent } : {}),
    ...(idle !== undefined ? { sessionIdleMs: idle } : {}),
  };
}
