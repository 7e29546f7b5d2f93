/**
 * Which stdio connectors run unconfined (`sandbox: off`, issue #15): one
 * answer for `serve`'s warning, `status`, `doctor` and the audit records.
 */
import type { Connector, StdioConnector } from './schema.js';

/** How a connector's process runs: stdio ones confined or not; other kinds have no process of their own. */
export type ConnectorSandbox = 'confined' | 'off';

export function sandboxOf(c: Connector): ConnectorSandbox | undefined {
  if (c.kind !== 'stdio') return undefined;
  return c.sandbox === 'off' ? 'off' : 'confined';
}

/** The enabled stdio connectors that run with the gateway's own rights. */
export function unconfinedConnectors(connectors: readonly Connector[]): StdioConnector[] {
  return connectors.filter((c): c is StdioConnector => c.kind === 'stdio' && c.enabled && c.sandbox === 'off');
}

/** The `unconfined` field of an audit record: the names, present only when there is one. */
export function unconfinedField(connectors: readonly Connector[]): { unconfined?: string[] } {
  const names = unconfinedConnectors(connectors).map((c) => c.name);
  return names.length > 0 ? { unconfined: names } : {};
}

/** Each report row with `sandbox` added for a stdio connector (http and built-in rows unchanged). */
export function withSandbox<R extends { name: string }>(rows: readonly R[], connectors: readonly Connector[]): Array<R & { sandbox?: ConnectorSandbox }> {
  return rows.map((r) => {
    const c = connectors.find((x) => x.name === r.name);
    const sandbox = c === undefined ? undefined : sandboxOf(c);
    return sandbox === undefined ? r : { ...r, sandbox };
  });
}
