import { Hono } from 'hono';
import { z } from 'zod';
import type { Gateway } from '../broker/gateway.js';
import { GatehouseError } from '../errors.js';
import { CONNECTOR_NAME } from '../registry/fields.js';
import type { PinRow, PinStore } from '../tools/pins.js';
import { screenTool, type Finding } from '../tools/screen.js';
import { adminBody } from './json-body.js';

const Decide = z.strictObject({ connector: z.string().regex(CONNECTOR_NAME), tool: z.string().min(1).max(256).optional(), by: z.string().min(1).max(200) });

/** A row as the CLI shows it: the pin state, and what screening finds in the version now listed. */
export interface ToolRow extends PinRow {
  findings: Finding[];
}


/**
 * `gatehouse tools …` over the admin API: pinned and quarantined tools, the
 * diff of a change, approving it and re-pinning a connector. An approval
 * rebuilds the catalog at once, so the agents' lists change (list_changed).
 */
export function toolsRoutes(pins: PinStore, gateway: Gateway): Hono {
  const r = new Hono();
  const known = (connector: string): void => {
    if (!gateway.opts.registry.connectors.some((c) => c.name === connector)) throw new GatehouseError('NOT_FOUND', `no connector "${connector}" in the registry`);
  };
  const rows = (connector?: string): ToolRow[] => {
    const listed = new Map<string, ReturnType<typeof screenTool>>();
    for (const [name, u] of gateway.upstreamsByName()) {
      if (connector !== undefined && name !== connector) continue;
      for (const t of u.tools) listed.set(`${name}\0${t.name}`, screenTool(t));
    }
    return pins.list(connector).map((p) => ({ ...p, findings: listed.get(`${p.connector}\0${p.tool}`) ?? [] }));
  };
  r.get('/', (c) => {
    const connector = c.req.query('connector');
    if (connector !== undefined) known(connector);
    return c.json({ tools: rows(connector) });
  });
  r.get('/:connector/:tool/diff', (c) => {
    const { connector, tool } = c.req.param();
    known(connector);
    const diff = pins.diff(connector, tool);
    if (diff === undefined) throw new GatehouseError('NOT_FOUND', `no tool "${tool}" of connector "${connector}" is pinned or listed`);
    const listed = gateway.upstreamsByName().get(connector)?.tools.find((t) => t.name === tool);
    return c.json({ connector, tool, diff, findings: listed === undefined ? [] : screenTool(listed) });
  });
  r.post('/approve', async (c) => {
    const b = await adminBody(c.req, Decide);
    known(b.connector);
    const approved = pins.approve(b.connector, b.tool, b.by);
    gateway.refreshCatalog();
    return c.json({ approved });
  });
  r.post('/pin', async (c) => {
    const b = await adminBody(c.req, Decide);
    known(b.connector);
    const pinned = pins.repin(b.connector, b.by);
    gateway.refreshCatalog();
    return c.json({ pinned });
  });
  return r;
}
