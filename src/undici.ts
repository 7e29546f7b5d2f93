/**
 * undici, loaded on first use. Importing it costs some 28 MiB of RSS (its
 * HTTP parser is a WebAssembly instance), more than a third of what an idle
 * gateway holds, so a gateway whose connectors are stdio servers, with no
 * model provider called and no HTTP sink, never loads it (issue #21: idle
 * RSS). The first user pays one synchronous load (tens of milliseconds).
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
