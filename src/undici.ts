/**
 * undici, loaded on first use. Importing it costs some 8 MiB of RSS (2.6 MiB
 * of heap and its own WebAssembly HTTP parser, on top of Node's built-in
 * copy that Hono's Web Request/Response already load), so a gateway whose
 * connectors are stdio servers, with no model provider called and no HTTP
 * sink, never loads it (issue #21: idle RSS). The first user pays one
 * synchronous load (tens of milliseconds).
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

export type { Undici };

let loaded: typeof Undici | undefined;

export function undici(): typeof Undici {
  loaded ??= createRequire(import.meta.url)('undici') as typeof Undici;
  return loaded;
}

/** Whether undici is loaded (an error can only be one of its classes if it is). */
export function undiciLoaded(): boolean {
  return loaded !== undefined;
}
