import { ListToolsResultSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { GatehouseError } from '../errors.js';
import { formatBytes } from './body-limit.js';
import type { UpstreamLimits } from './limits.js';

/** Pages of one tool listing; more is refused like too many tools (a server that pages forever, or one tool a page). */
export const MAX_TOOL_PAGES = 200;
/** A tools/list page as first read: counted before its tools are parsed one by one (160,000 tiny tools fit in 8 MiB). */
export const ToolPageSchema = z.looseObject({ tools: z.array(z.unknown()), nextCursor: z.string().optional() });
export type ToolPage = z.infer<typeof ToolPageSchema>;

/**
 * An upstream's whole tool list, within limits.tools and limits.toolListBytes
 * (4 M tools over 50 pages cost 3.5 GB and every agent's tools/list 9–11 s).
 * Over a limit the listing fails as a whole, never cut short: a cut list
 * drops whichever tools came last, silently, and an admin would rather see the
 * connector refused with the reason and the fix. `page` reads one page (its
 * body capped on the wire at limits.toolListBytes).
 */
export async function listAllTools(connector: string, limits: Pick<UpstreamLimits, 'tools' | 'toolListBytes'>, page: (cursor: string | undefined) => Promise<ToolPage>): Promise<Tool[]> {
  const { tools: maxTools, toolListBytes } = limits;
  const tools: Tool[] = [];
  let bytes = 0;
  let cursor: string | undefined;
  for (let n = 0; ; n++) {
    if (n === MAX_TOOL_PAGES) throw listTooBig(connector, `more than ${MAX_TOOL_PAGES} pages`, 'tools');
    const raw = await page(cursor);
    if (tools.length + raw.tools.length > maxTools) throw listTooBig(connector, `more than ${maxTools.toLocaleString('en-US')} tools`, 'tools');
    bytes += Buffer.byteLength(JSON.stringify(raw.tools));
    if (bytes > toolListBytes) throw listTooBig(connector, `a tool list of more than ${formatBytes(toolListBytes)}`, 'toolListBytes');
    const res = ListToolsResultSchema.parse(raw);
    for (const t of res.tools) tools.push(t);
    if (res.nextCursor === undefined) break;
    cursor = res.nextCursor;
  }
  return tools;
}

function listTooBig(connector: string, what: string, key: 'tools' | 'toolListBytes'): GatehouseError {
  return new GatehouseError(
    'UPSTREAM_PROTOCOL',
    `connector "${connector}" lists ${what}, over its limit; its tools are not used until the list fits. To allow more, raise limits.${key} in the connector's registry entry`,
    { details: { limit: key } },
  );
}
