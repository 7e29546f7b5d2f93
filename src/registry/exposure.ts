/**
 * A connector's `tools: { allow, deny }`: which of its tools agents may see.
 * Used by the catalog (served tools) and by `connector list` (offline).
 */
import picomatch from 'picomatch';

export interface ExposureFilter {
  allow: string[];
  deny: string[];
}

const matcherCache = new Map<string, (s: string) => boolean>();
function glob(pattern: string): (s: string) => boolean {
  let m = matcherCache.get(pattern);
  if (!m) {
    m = picomatch(pattern, { dot: true, nobrace: false });
    matcherCache.set(pattern, m);
  }
  return m;
}

/** Listed by an allow glob and by no deny glob. */
export function isExposed(filter: ExposureFilter, upstreamName: string): boolean {
  return filter.allow.some((p) => glob(p)(upstreamName)) && !filter.deny.some((p) => glob(p)(upstreamName));
}
