import { mkdirSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * `gatehouse secret set/delete` tell a running gateway that a secret changed
 * by touching a file in the state directory; the gateway watches the folder
 * and re-reads at once instead of waiting for its cache and poll. The file
 * holds the secret's name and the time, never a value.
 */
export function noticeDir(stateDir: string): string {
  return join(stateDir, 'secrets');
}

export function notifySecretChanged(stateDir: string, name: string): void {
  const dir = noticeDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'changed'), JSON.stringify({ name, at: new Date().toISOString() }) + '\n', { mode: 0o600 });
}

/** Calls `onNotice` (debounced) whenever the notice file is written. Returns the function that stops watching. */
export function watchNotices(dir: string, onNotice: () => void, logger?: Logger): () => void {
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(onNotice, 20);
    });
    watcher.on('error', (e) => logger?.warn({ err: errorMessage(e) }, 'secret change notices stopped; polling only'));
  } catch (e) {
    // The poll still catches every change, only later.
    logger?.warn({ dir, err: errorMessage(e) }, 'cannot watch for secret change notices; polling only');
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
