/**
 * Jira Cloud or Data Center, decided by the site (never by the credential's
 * shape): the registry's `deployment`, else the host, else the server's own
 * word, asked once (GET /rest/api/2/serverInfo, `deploymentType`).
 * Cloud speaks REST v3 (ADF bodies, POST /search/jql); Data Center REST v2.
 */
import { ProviderError } from '../errors.js';
import type { ProviderApi } from '../api.js';
import { networkFailure } from '../http.js';
import type { JiraDeployment } from '../../registry/builtin-kinds.js';

export type { JiraDeployment };

export interface KnownDeployment {
  deployment: JiraDeployment;
  /** How it was decided, for `connector test`. */
  by: 'registry' | 'site' | 'serverInfo';
}

/** Cloud when the host says so: SITE.atlassian.net, or the api.atlassian.com gateway (/ex/jira/CLOUD_ID). */
export function siteDeployment(baseUrl: string): JiraDeployment | undefined {
  let host: string;
  try {
    host = new URL(baseUrl).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  return host.endsWith('.atlassian.net') || host === 'api.atlassian.com' ? 'cloud' : undefined;
}

/**
 * serverInfo's `deploymentType`: "Cloud" on Cloud; "Server" (or "DataCenter")
 * on a self-managed site (https://docs.atlassian.com/software/jira/docs/api/REST/latest/#api/2/serverInfo).
 */
export function deploymentOfServerInfo(body: unknown): JiraDeployment | undefined {
  const t = body && typeof body === 'object' ? (body as Record<string, unknown>).deploymentType : undefined;
  if (typeof t !== 'string') return undefined;
  if (/^cloud$/i.test(t)) return 'cloud';
  if (/^(?:server|datacenter|data center)$/i.test(t)) return 'datacenter';
  return undefined;
}

/**
 * The connector's deployment, decided once: given, or from the host, or
 * asked (one request shared by concurrent calls; a failed ask is not cached).
 * The shared ask has its own deadline, `deadlineMs` (the connector's call
 * timeout), since no one caller's signal may cancel it for the others; each
 * caller waits on it only until its own `signal` aborts, so a site that
 * trickles its answer holds no call past that call's end.
 */
export function deploymentResolver(base: ProviderApi, given: JiraDeployment | undefined, baseUrl: string, deadlineMs: number): (signal?: AbortSignal) => Promise<KnownDeployment> {
  const site = siteDeployment(baseUrl);
  let known: KnownDeployment | undefined = given !== undefined ? { deployment: given, by: 'registry' } : site !== undefined ? { deployment: site, by: 'site' } : undefined;
  let asking: Promise<KnownDeployment> | undefined;
  const ask = async (): Promise<KnownDeployment> => {
    let body: unknown;
    try {
      body = (await base.request({ method: 'GET', path: '/rest/api/2/serverInfo', bucket: 'jira', signal: AbortSignal.timeout(deadlineMs) })).body;
    } catch (e) {
      if (e instanceof ProviderError) {
        throw new ProviderError(e.kind, `${e.message} (This was GET /rest/api/2/serverInfo, which tells Jira Cloud from Data Center; set deployment: cloud or datacenter in the connector's registry file to skip it.)`, {
          ...(e.status !== undefined ? { status: e.status } : {}),
          ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
        });
      }
      throw e;
    }
    const d = deploymentOfServerInfo(body);
    if (d === undefined) {
      throw new ProviderError('protocol', "Jira's /rest/api/2/serverInfo did not say whether this is Cloud or Data Center (no known deploymentType): check baseUrl, or set deployment: cloud or datacenter in the connector's registry file.");
    }
    return { deployment: d, by: 'serverInfo' };
  };
  return async (signal) => {
    if (known !== undefined) return known;
    // The answer is kept even when every caller has given up on it by then.
    asking ??= ask()
      .then((k) => (known = k))
      .finally(() => (asking = undefined));
    return untilAborted(asking, signal, base);
  };
}

/** `p`, or a "cancelled" (or "timed out") ProviderError as soon as `signal` aborts; `p` itself runs on. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, base: ProviderApi): Promise<T> {
  if (signal === undefined) return p;
  const stopped = () => networkFailure(signal.reason ?? new DOMException('aborted', 'AbortError'), base.errorContext);
  if (signal.aborted) return Promise.reject(stopped());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
