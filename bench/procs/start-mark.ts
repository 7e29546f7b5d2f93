/**
 * Preloaded into a bench connector (`node --import=…/start-mark.js server.js`):
 * prints when this Node process started, on the shared realtime clock, so the
 * bench can split a start into launcher set-up and Node's own start-up.
 */
process.stderr.write(`GATEHOUSE_BENCH_T0 ${performance.timeOrigin}\n`);
