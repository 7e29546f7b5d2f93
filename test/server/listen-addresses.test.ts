import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { allowedHosts, checkHost } from '../../src/server/guards.js';
import { isWildcard, listenerAddresses, reachableNote } from '../../src/server/listen.js';

const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false, scopeid = 0): NetworkInterfaceInfo =>
  (family === 'IPv4'
    ? { address, family, internal, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: null }
    : { address, family, internal, netmask: 'ffff:ffff:ffff:ffff::', mac: '00:00:00:00:00:00', cidr: null, scopeid }) as NetworkInterfaceInfo;

const NETS = {
  eth0: [nic('192.168.1.5', 'IPv4'), nic('fe80::1', 'IPv6', false, 2), nic('2001:db8::5', 'IPv6')],
  lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
  wlan0: [nic('10.0.0.7', 'IPv4')],
};

describe('--host 0.0.0.0: the real addresses it can be reached on', () => {
  it('0.0.0.0 lists every interface IPv4 address, loopback first', () => {
    expect(listenerAddresses('0.0.0.0', 8931, NETS)).toEqual(['127.0.0.1:8931', '192.168.1.5:8931', '10.0.0.7:8931']);
  });

  it(':: lists IPv6 too (bracketed), never a link-local address (it needs a zone)', () => {
    expect(listenerAddresses('::', 8931, NETS)).toEqual(['127.0.0.1:8931', '[::1]:8931', '192.168.1.5:8931', '10.0.0.7:8931', '[2001:db8::5]:8931']);
  });

  it('a specific bind is reachable at that address only', () => {
    expect(listenerAddresses('192.168.1.5', 8931, NETS)).toEqual(['192.168.1.5:8931']);
    expect(listenerAddresses('::1', 8931, NETS)).toEqual(['[::1]:8931']);
  });

  it('isWildcard knows both wildcards', () => {
    expect(['0.0.0.0', '::', '[::]', '127.0.0.1', 'localhost'].map(isWildcard)).toEqual([true, true, true, false, false]);
  });

  it('serve prints each URL and how to allow host names for a wildcard bind, nothing for loopback', () => {
    const urls = listenerAddresses('0.0.0.0', 8931, NETS).map((a) => `http://${a}/mcp`);
    const note = reachableNote('0.0.0.0', urls);
    for (const u of urls) expect(note).toContain(`reachable at ${u}\n`);
    expect(note).toContain('--allowed-host NAME');
    expect(reachableNote('127.0.0.1', ['http://127.0.0.1:8931/mcp'])).toBe('');
    expect(reachableNote('192.168.1.5', ['http://192.168.1.5:8931/mcp'])).toContain('--allowed-host NAME');
  });
});

describe('--allowed-host NAME and the 403 that names it', () => {
  it('a bare NAME is accepted on the listening port, NAME:PORT as given', () => {
    const hosts = allowedHosts(8931, ['Gate.Example', 'proxy.example:443']);
    expect(checkHost('gate.example:8931', hosts)).toEqual({ ok: true });
    expect(checkHost('proxy.example:443', hosts)).toEqual({ ok: true });
    expect(checkHost('gate.example:8932', hosts).ok).toBe(false);
    expect(checkHost('proxy.example:8931', hosts).ok).toBe(false);
  });

  it('on port 80 a bare NAME also matches a Host without a port (RFC 9110 §7.2)', () => {
    expect(checkHost('gate.example', allowedHosts(80, ['gate.example']))).toEqual({ ok: true });
    expect(checkHost('gate.example', allowedHosts(8931, ['gate.example'])).ok).toBe(false);
  });

  it('an unknown Host gets 403 saying which flag accepts it', () => {
    const v = checkHost('MyBox.lan:8931', allowedHosts(8931));
    expect(v).toEqual({ ok: false, status: 403, message: 'Forbidden: Host "MyBox.lan:8931" is not allowed; allow it with: gatehouse serve --allowed-host mybox.lan:8931' });
  });

  it('a hostile Host is not repeated in the hint (only names and addresses are)', () => {
    const v = checkHost('evil.example:1\u001b[2J', allowedHosts(8931));
    expect(v.ok === false && v.message).toMatch(/--allowed-host NAME$/);
  });
});
