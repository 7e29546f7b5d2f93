/**
 * Whether a console login may be issued for a listener. The gateway speaks
 * plain HTTP: on loopback that stays on the machine, anywhere else the login
 * secret, the session cookie and its token would cross the network in clear.
 */

/** Hosts whose traffic never leaves the machine (RFC 6890: 127.0.0.0/8, ::1; RFC 6761: localhost). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Why no login may be issued for the console at `baseUrl`, or undefined when it may. */
export function loginRefusal(baseUrl: string, allowInsecure: boolean): string | undefined {
  const url = new URL(baseUrl);
  if (allowInsecure || url.protocol === 'https:' || isLoopbackHost(url.hostname)) return undefined;
  return (
    `the console listens on ${url.host} over plain HTTP, so its login link, cookie and token would cross the network readable; ` +
    'serve on 127.0.0.1 and reach it through an SSH tunnel (ssh -L), or start gatehouse serve with --console-insecure to accept that'
  );
}
