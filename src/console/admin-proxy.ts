/**
 * The console's reads and decisions are the admin API's own routes, called
 * in process: one implementation of status, approvals, audit queries and tool
 * pins, whichever door the admin comes in by. Only the routes listed here
 * pass, and a decision is always made in the console session's name.
 */
import { GatehouseError } from '../errors.js';

export type AdminFetch = (req: Request) => Promise<Response>;

/** Admin API reads the console shows (paths under /admin/v1). */
const READS: readonly RegExp[] = [
  /^\/status$/,
  /^\/sessions$/,
  /^\/sandbox\/sessions$/,
  /^\/approvals$/,
  /^\/audit$/,
  /^\/tools$/,
  /^\/tools\/[^/]+\/[^/]+\/diff$/,
];

/** Admin API decisions the console may make; `by` is set here, never taken from the page. */
const DECISIONS: readonly RegExp[] = [/^\/approvals\/[^/]+\/approve$/, /^\/approvals\/[^/]+\/deny$/, /^\/tools\/approve$/];

export function allowedAdminRoute(method: string, path: string): boolean {
  const list = method === 'GET' ? READS : method === 'POST' ? DECISIONS : [];
  return list.some((re) => re.test(path));
}

/** A decision's body: the page's JSON object, with `by` naming the console session (a `by` of the page's own is refused). */
export function decisionBody(text: string, by: string): string {
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new GatehouseError('USAGE', 'request body is not valid JSON');
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GatehouseError('USAGE', 'request body must be a JSON object');
  if (Object.hasOwn(raw, 'by')) throw new GatehouseError('USAGE', '"by" is set by the gateway: a decision made in the console names its session');
  return JSON.stringify({ ...raw, by });
}

/** Calls the admin API route `path` (with its query) and returns its answer as it is. */
export async function callAdmin(admin: AdminFetch, method: 'GET' | 'POST', pathAndQuery: string, body?: string): Promise<Response> {
  return admin(new Request(`http://admin.invalid${pathAndQuery}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body } : {}) }));
}

/** An admin API read as JSON (for state the console composes); its error answer is thrown as it came. */
export async function adminJson<T>(admin: AdminFetch, path: string): Promise<T> {
  const res = await callAdmin(admin, 'GET', path);
  const json = (await res.json()) as T & { error?: { message?: string } };
  if (!res.ok) throw new GatehouseError('INTERNAL', json.error?.message ?? `admin API answered ${res.status}`);
  return json;
}
