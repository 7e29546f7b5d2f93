import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuditSink } from '../../src/audit/types.js';
import type { Catalog, CatalogEntry } from '../../src/broker/catalog.js';
import type { PipelineDeps } from '../../src/broker/pipeline.js';
import { silentLogger } from '../../src/log.js';
import type { Upstream } from '../../src/upstreams/upstream.js';

/** Pipeline dependencies with one tool, `demo__echo`, whose upstream echoes its arguments (after `onCall`, which may wait). */
export function echoDeps(audit: AuditSink, onCall: () => unknown = () => undefined): PipelineDeps {
  const entry: CatalogEntry = {
    name: 'demo__echo',
    connector: 'demo',
    upstreamName: 'echo',
    tool: { name: 'demo__echo', inputSchema: { type: 'object' } },
  };
  const catalog: Catalog = { byName: new Map([[entry.name, entry]]), sorted: [entry], problems: [] };
  const upstream = {
    connector: { limits: {}, results: { invisible: 'flag' } },
    async call(_name: string, args: Record<string, unknown>): Promise<CallToolResult> {
      await onCall();
      return { content: [{ type: 'text', text: JSON.stringify(args) }] };
    },
  } as unknown as Upstream;
  return {
    catalog: () => catalog,
    upstream: () => upstream,
    authorize: async () => ({ allowed: true, decision: { effect: 'allow', ruleId: 'allow-demo', message: 'ok' } }),
    audit,
    redact: (v) => v,
    logger: silentLogger,
  };
}
