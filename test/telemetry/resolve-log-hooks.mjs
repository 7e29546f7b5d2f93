// Module customization hooks (node:module register): one line per resolved module URL.
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (process.env.RESOLVE_LOG) appendFileSync(process.env.RESOLVE_LOG, `${resolved.url}\n`);
  return resolved;
}
