/**
 * A JSON-RPC error response, with no id as the transport itself answers (before any message is read),
 * or with the request's id and data where the request could be read (the 2026-07-28 edge checks).
 */
export function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}, more: { data?: unknown; id?: string | number | null } = {}): Response {
  const error = { code, message, ...(more.data !== undefined ? { data: more.data } : {}) };
  return new Response(JSON.stringify({ jsonrpc: '2.0', error, id: more.id ?? null }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}
