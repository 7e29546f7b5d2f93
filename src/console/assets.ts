/**
 * The console's static files: plain HTML, CSS and JavaScript, no build step.
 * They live next to the sources (src/console/assets/) and are read from there
 * by the compiled code too, so `npm ci` (tsc) is all a checkout needs. Only
 * the files listed here are served, whatever the request path says.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatehouseError } from '../errors.js';

const TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
};

export interface Asset {
  body: string;
  type: string;
}

/** src/console/assets, from src/console/ (tsx, vitest) or from dist/src/console/ (the build). */
export function assetsDir(here = dirname(fileURLToPath(import.meta.url))): string {
  const beside = join(here, 'assets');
  if (existsSync(join(beside, 'index.html'))) return beside;
  return resolve(here, '..', '..', '..', 'src', 'console', 'assets');
}

/** Reads every asset once, at start: a missing file is a broken install, said at once. */
export function loadAssets(dir = assetsDir()): ReadonlyMap<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, type] of Object.entries(TYPES)) {
    const file = join(dir, name);
    if (!existsSync(file)) throw new GatehouseError('CONFIG_INVALID', `the console's file ${file} is missing (a broken install?)`);
    out.set(name, { body: readFileSync(file, 'utf8'), type });
  }
  return out;
}
