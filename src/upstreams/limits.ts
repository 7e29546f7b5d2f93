/**
 * What one upstream may spend of the gateway: result and tool-list sizes,
 * notification and request rates, stderr volume, re-lists. One
 * table of defaults, changed per connector under `limits:` in its registry
 * entry; README's "Limits" section lists them.
 */
import type { ToolConnector } from '../registry/schema.js';

export interface UpstreamLimits {
  resultBytes: number;
  tools: number;
  toolListBytes: number;
  notificationsPerSecond: number;
  requestsPerMinute: number;
  stderrBytesPerSecond: number;
  relistsPerMinute: number;
}

export const DEFAULT_LIMITS: Readonly<UpstreamLimits> = Object.freeze({
  resultBytes: 16 * 1024 * 1024,
  tools: 2_000,
  toolListBytes: 8 * 1024 * 1024,
  notificationsPerSecond: 50,
  requestsPerMinute: 60,
  stderrBytesPerSecond: 64 * 1024,
  relistsPerMinute: 30,
});

/** The connector's limits, its registry values over the defaults. */
export function limitsOf(c: Pick<ToolConnector, 'limits'>): UpstreamLimits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(c.limits ?? {}).filter(([, v]) => v !== undefined)) };
}
