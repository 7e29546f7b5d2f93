/**
 * The upstreams the egress bench reaches, in their own process:
 * an HTTP server answering every request with a small body (keep-alive), and
 * a TCP sink that reads "<bytes>\n" then that many bytes, and answers "done\n".
 *   node dist/bench/procs/egress-upstream.js   prints "LISTENING http=<port> sink=<port>"
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

const BODY = Buffer.from('{"ok":true,"name":"bench-package","version":"1.0.0"}\n');

const http = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length }).end(BODY));
});

/** Counts the announced bytes without keeping them; "done\n" when all have arrived. */
function sink(socket: Socket): void {
  let want = -1;
  let got = 0;
  let head = '';
  socket.on('error', () => undefined);
  socket.on('data', (b: Buffer) => {
    if (want < 0) {
      const nl = b.indexOf(10);
      if (nl === -1) {
        head += b.toString('latin1');
        return;
      }
      want = Number(head + b.subarray(0, nl).toString('latin1'));
      got = b.length - nl - 1;
    } else {
      got += b.length;
    }
    if (got >= want) socket.end('done\n');
  });
}
const tcp = createNetServer(sink);

await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
process.stdout.write(`LISTENING http=${(http.address() as AddressInfo).port} sink=${(tcp.address() as AddressInfo).port}\n`);
process.on('SIGTERM', () => process.exit(0));
