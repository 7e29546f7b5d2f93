/**
 * The floor of a CONNECT hop in Node, for the egress bench to set the proxy
 * against: the same unix sockets, the CONNECT line read and answered, the
 * upstream dialled, then both directions piped with `pipe()`. No policy, no
 * audit, no limits, no byte counts: what moving the bytes through one more
 * Node process costs on this machine, whoever writes the proxy.
 *   node dist/bench/procs/egress-bare.js <sockets> <agents>   prints "READY"
 */
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';

const [sockets, agents] = process.argv.slice(2);
if (sockets === undefined || agents === undefined) {
  process.stderr.write('usage: egress-bare.js <sockets> <agents>\n');
  process.exit(2);
}

function serve(client: Socket): void {
  client.on('error', () => client.destroy());
  let head = Buffer.alloc(0);
  const onData = (b: Buffer): void => {
    head = Buffer.concat([head, b]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    client.off('data', onData);
    client.pause();
    const m = /^CONNECT ([^\s:]+):(\d+) /.exec(head.subarray(0, end).toString('latin1'));
    if (m === null) return void client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    const rest = head.subarray(end + 4);
    const up = connect({ host: m[1], port: Number(m[2]), noDelay: true }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (rest.length > 0) up.write(rest);
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
    up.on('error', () => client.destroy());
    up.on('close', () => client.destroy());
    client.on('close', () => up.destroy());
  };
  client.on('data', onData);
}

for (let i = 1; i <= Number(agents); i++) {
  const server = createServer(serve);
  await new Promise<void>((r) => server.listen(join(sockets, `bench-${i}.sock`), r));
}
process.stdout.write('READY\n');
process.on('SIGTERM', () => process.exit(0));
