/**
 * Which resolved addresses the proxy refuses unless a rule names the host
 * exactly (a pure function). Everything but global unicast is refused, so a
 * name cannot point a sandbox back at the gateway, the host or the LAN:
 * loopback, RFC 1918 and ULA (fc00::/7), link-local, CGNAT (100.64/10),
 * unspecified, multicast, broadcast, reserved and documentation ranges,
 * NAT64 / 6to4 / Teredo (which embed an IPv4 address), and the cloud
 * metadata addresses. An IPv4-mapped IPv6 address is judged as its IPv4.
 */
import { createRequire } from 'node:module';
import { canonicalIp } from '../policy/egress.js';

// ipaddr.js is CommonJS whose names Node's ESM loader cannot see; its types describe the require() value.
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof import('ipaddr.js');

/** AWS, GCP, Azure (169.254.169.254), AWS IPv6 (fd00:ec2::254), Alibaba (100.100.100.200), Azure WireServer (168.63.129.16). */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '168.63.129.16']);

/** Global unicast IPv6 is 2000::/3; ipaddr.js calls ranges it does not know "unicast" (::/96 IPv4-compatible, fec0::/10 site-local, 64:ff9b:1::/48). */
const GLOBAL_V6 = ipaddr.parseCIDR('2000::/3');
const LOCAL_NAT64 = ipaddr.parseCIDR('64:ff9b:1::/48');

const NAMES: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private (RFC 1918) address',
  uniqueLocal: 'a unique local (fc00::/7) address',
  linkLocal: 'a link-local address',
  carrierGradeNat: 'a carrier-grade NAT (100.64.0.0/10) address',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
};

/** Why `address` may not be reached without a rule naming the host, or undefined for a global unicast address. */
export function addressProblem(address: string): string | undefined {
  const ip = canonicalIp(address);
  if (ip === undefined) return 'not an IP address';
  if (METADATA.has(ip)) return 'a cloud metadata address';
  const parsed = ipaddr.parse(ip);
  const range = parsed.range();
  if (parsed.kind() === 'ipv6' && range === 'unicast') {
    if (parsed.match(LOCAL_NAT64)) return 'a local-use NAT64 (64:ff9b:1::/48) address';
    if (!parsed.match(GLOBAL_V6)) return 'an IPv6 address outside global unicast (2000::/3)';
  }
  if (range === 'unicast') return undefined;
  return NAMES[range] ?? `a special-purpose address (${range})`;
}
