import { basename, relative } from 'node:path';

/** How the user can run this CLI again, for messages ("gatehouse", or "node dist/src/cli/main.js"). */
export function invocation(): string {
  const script = process.argv[1] ?? '';
  if (basename(script) === 'gatehouse') return 'gatehouse';
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') ? script : rel}`;
}
