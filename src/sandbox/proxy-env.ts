/** The relay's port inside an agent's sandbox (`gatehouse run --port`): MCP, model calls and the egress proxy. */
export const DEFAULT_RELAY_PORT = 8931;

/**
 * The variables HTTP clients read for a proxy (curl, git, npm, pip: lower and
 * upper case), pointing at the relay inside a sandbox: the gateway's egress
 * proxy. Loopback (the relay itself: MCP, model calls) is reached directly.
 */
export function proxyEnv(port: number): Record<string, string> {
  const proxy = `http://127.0.0.1:${port}`;
  const direct = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: direct,
    no_proxy: direct,
    // Node 22.21+/24 use these for fetch and http when told to.
    NODE_USE_ENV_PROXY: '1',
  };
}
