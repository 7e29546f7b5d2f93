/** Addresses a name may not lead to unless a rule names the host exactly. */
import { describe, expect, it } from 'vitest';
import { addressProblem } from '../../src/egress/address.js';

describe('address check', () => {
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['::1', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['::ffff:7f00:1', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['192.168.1.1', /private/],
    ['::ffff:192.168.1.1', /private/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['169.254.169.254', /metadata/],
    ['::ffff:169.254.169.254', /metadata/],
    ['fd00:ec2::254', /metadata/],
    ['100.100.100.200', /metadata/],
    ['169.254.1.1', /link-local/],
    ['fe80::1', /link-local/],
    ['100.64.0.1', /carrier-grade/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['ff02::1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['64:ff9b::7f00:1', /special-purpose/],
    ['2002:7f00:1::1', /special-purpose/],
    ['192.0.2.1', /special-purpose/],
    ['not-an-ip', /not an IP/],
  ];
  it('the table is not empty', () => expect(refused.length).toBeGreaterThan(20));
  it.each(refused)('refuses %s', (a, why) => expect(addressProblem(a)).toMatch(why));
  it.each(['93.184.215.14', '1.1.1.1', '2606:4700:4700::1111', '::ffff:1.1.1.1'])('lets the public address %s through', (a) => expect(addressProblem(a)).toBeUndefined());
});
