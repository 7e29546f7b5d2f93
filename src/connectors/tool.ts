import type { CallToolResult, Tool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Annotations, stated honestly (MCP spec, "Tool annotations"). */
export const READ: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true };
/** Adds something new (an issue, a comment, a message); repeating it adds another. */
export const ADD: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true };
/** Changes existing state (not purely additive), though reversibly. */
export const CHANGE: ToolAnnotations = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true };

export interface CallInfo {
  signal: AbortSignal;
}

/** One tool of a built-in connector. `Api` is the connector's authenticated client. */
export interface ToolSpec<Api> {
  name: string;
  title: string;
  description: string;
  input: z.ZodType<Record<string, unknown>>;
  output: z.ZodType;
  annotations: ToolAnnotations;
  run(api: Api, args: Record<string, unknown>, call: CallInfo): Promise<Record<string, unknown>>;
}

/** Typed construction: `run` sees the parsed arguments and must return the output shape. */
export function defineTool<Api, I extends z.ZodType<Record<string, unknown>>, O extends z.ZodType<Record<string, unknown>>>(spec: {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  run(api: Api, args: z.output<I>, call: CallInfo): Promise<z.input<O>>;
}): ToolSpec<Api> {
  return spec as unknown as ToolSpec<Api>;
}

function jsonSchema(schema: z.ZodType): Tool['inputSchema'] {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest as Tool['inputSchema'];
}

/** The MCP `Tool` a spec is listed as. */
export function toolOf(spec: ToolSpec<unknown>): Tool {
  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    inputSchema: jsonSchema(spec.input),
    outputSchema: jsonSchema(spec.output) as NonNullable<Tool['outputSchema']>,
    annotations: { title: spec.title, ...spec.annotations },
  };
}

export function structured(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

export function failure(text: string, meta: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: { 'gatehouse/connector-error': meta } };
}

/** Shared argument: how many items to collect across pages, with a hard cap. */
export const maxItems = (dflt: number, cap: number) =>
  z
    .number()
    .int()
    .min(1)
    .max(cap)
    .default(dflt)
    .describe(`How many items to return at most (default ${dflt}, at most ${cap}); pages are followed until then.`);
