/**
 * A stand-in OTLP/HTTP collector for the bench: takes every POST (traces,
 * logs), reads the body and answers 200 with an empty protobuf message, as a
 * collector that accepts everything does. Counts requests and bytes.
 *   node dist/bench/procs/otlp-sink.js   prints "LISTENING PORT"
 */
import { createServer } from 'node:http';

const seen = { requests: 0, bytes: 0 };
const server = createServer((req, res) => {
  req.on('data', (b: Buffer) => (seen.bytes += b.length));
  req.on('end', () => {
    seen.requests++;
    if (req.method === 'GET') return void res.end(JSON.stringify(seen));
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`LISTENING ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
