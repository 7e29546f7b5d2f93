/**
 * The bench's provider simulator in its own process (so its event loop is not
 * the load generator's):  node dist/bench/procs/model-server.js API_KEY
 * prints LISTENING <port>.
 */
import { startModelServer } from '../lib/model-server.js';

const [apiKey] = process.argv.slice(2);
if (!apiKey) throw new Error('usage: model-server.js API_KEY');
const sim = await startModelServer(apiKey);
process.stdout.write(`LISTENING ${new URL(sim.url).port}\n`);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
