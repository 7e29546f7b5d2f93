/**
 * A real rsyslogd (the distribution's package, scripts/test-deps.sh installs
 * it with rsyslog-gnutls) in the foreground with a private configuration:
 * imtcp on loopback, one plain TCP input and one TLS input (the gtls
 * driver, a self-signed certificate made here with openssl), mmpstrucdata
 * parsing each message's RFC 5424 structured data, and every message
 * written to a file as one JSON object: what rsyslog itself understood.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tempDir, until } from '../../helpers/gateway.js';

export interface Received {
  pri: number;
  severity: number;
  facility: number;
  msgid: string;
  app: string;
  host: string;
  /** The structured data as mmpstrucdata parsed it: { sdId: { param: value } }. */
  sd: Record<string, Record<string, string>>;
  msg: string;
}

export interface Rsyslog {
  dir: string;
  tcpPort: number;
  tlsPort: number;
  /** The CA (the self-signed certificate itself) a sink must trust. */
  caFile: string;
  received(): Received[];
  stop(): Promise<void>;
  /** Starts it again on the same ports. */
  restart(): Promise<void>;
}

/** A self-signed certificate for localhost / 127.0.0.1 (RSA 2048, 2 days). */
export function selfSigned(dir: string, name = 'cert'): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

function config(dir: string, cert: { cert: string; key: string }, ports: { tcp: number; tls: number }): string {
  const q = (s: string) => JSON.stringify(s);
  return `
global(workDirectory=${q(dir)} maxMessageSize="256k")
module(load="imtcp")
module(load="mmpstrucdata")
template(name="asJson" type="list") {
  constant(value="{\\"pri\\":") property(name="pri")
  constant(value=",\\"severity\\":") property(name="syslogseverity")
  constant(value=",\\"facility\\":") property(name="syslogfacility")
  constant(value=",\\"msgid\\":\\"") property(name="msgid" format="json")
  constant(value="\\",\\"app\\":\\"") property(name="app-name" format="json")
  constant(value="\\",\\"host\\":\\"") property(name="hostname" format="json")
  constant(value="\\",\\"sd\\":\\"") property(name="$!rfc5424-sd" format="json")
  constant(value="\\",\\"msg\\":\\"") property(name="msg" format="json")
  constant(value="\\"}\\n")
}
ruleset(name="in") {
  action(type="mmpstrucdata")
  action(type="omfile" file=${q(join(dir, 'out.jsonl'))} template="asJson")
}
input(type="imtcp" address="127.0.0.1" port=${q(String(ports.tcp))} listenPortFileName=${q(join(dir, 'port-tcp'))} ruleset="in")
input(type="imtcp" address="127.0.0.1" port=${q(String(ports.tls))} listenPortFileName=${q(join(dir, 'port-tls'))} ruleset="in"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile=${q(cert.cert)} streamDriver.CertFile=${q(cert.cert)} streamDriver.KeyFile=${q(cert.key)})
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function readPort(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const n = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export async function startRsyslog(): Promise<Rsyslog> {
  const dir = tempDir('gatehouse-rsyslog-');
  const cert = selfSigned(dir);
  let child: ChildProcess | undefined;
  let ports = { tcp: 0, tls: 0 };
  const launch = async () => {
    for (const f of ['port-tcp', 'port-tls']) writeFileSync(join(dir, f), '');
    writeFileSync(join(dir, 'rsyslog.conf'), config(dir, cert, ports));
    let err = '';
    child = spawn(existsSync('/usr/sbin/rsyslogd') ? '/usr/sbin/rsyslogd' : 'rsyslogd', ['-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid'), '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<never>((_, reject) => child?.once('exit', (c) => reject(new Error(`rsyslogd exited (${c}): ${err}`))));
    exited.catch(() => undefined);
    if (ports.tcp !== 0) {
      // Restarted on known ports (rsyslog writes listenPortFileName only for port 0): listening once both accept a connection.
      await Promise.race([until(async () => (await accepts(ports.tcp)) && (await accepts(ports.tls)), 'rsyslogd to listen again', 20_000), exited]);
      return;
    }
    const tcp = readPort.bind(null, join(dir, 'port-tcp'));
    const tls = readPort.bind(null, join(dir, 'port-tls'));
    await Promise.race([until(() => tcp() !== undefined && tls() !== undefined, 'rsyslogd to listen', 20_000), exited]);
    ports = { tcp: tcp() as number, tls: tls() as number };
  };
  const stop = async () => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  };
  await launch();
  return {
    dir,
    get tcpPort() {
      return ports.tcp;
    },
    get tlsPort() {
      return ports.tls;
    },
    caFile: cert.cert,
    received() {
      const file = join(dir, 'out.jsonl');
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const r = JSON.parse(l) as Omit<Received, 'sd'> & { sd: string };
          return { ...r, sd: r.sd === '' ? {} : (JSON.parse(r.sd) as Received['sd']) };
        });
    },
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}
