import { stringify as stringifyToml } from 'smol-toml';
import { GatehouseError } from '../../errors.js';
import { hasEntry, mergeJson, mergeToml, readConfig, writeConfigAtomic } from './config-file.js';
import type { ClientTarget } from './targets.js';

/** The entry as it appears in the client's file, for --print and for pasting by hand. */
export function snippet(t: ClientTarget): string {
  const [table, name] = t.keyPath;
  if (t.format === 'toml') return stringifyToml({ [table]: { [name]: t.entry } }) + '\n';
  return JSON.stringify({ [table]: { [name]: t.entry } }, null, 2) + '\n';
}

export interface InstallResult {
  file: string;
  /** An entry of that name was there and is replaced. */
  replaced: boolean;
  commentsDropped: boolean;
}

/**
 * Merges the entry into the client's file, keeping everything else. If the
 * client rewrites the file while we merge (Claude Code saves ~/.claude.json
 * often), the merge is redone on the new text rather than losing its change.
 */
export function install(t: ClientTarget): InstallResult {
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = readConfig(t.file);
    // Merging first validates the text: a file that does not parse is refused before anything else reads it.
    const merged = t.format === 'json' ? { text: mergeJson(t.file, before.text, t.keyPath, t.entry), commentsDropped: false } : mergeToml(t.file, before.text, t.keyPath, t.entry);
    const replaced = hasEntry(t.format, before.text, t.keyPath);
    if (readConfig(t.file).stamp !== before.stamp) continue;
    writeConfigAtomic(t.file, merged.text);
    return { file: t.file, replaced, commentsDropped: merged.commentsDropped };
  }
  throw new GatehouseError('STATE_UNAVAILABLE', `${t.file} kept changing while gatehouse merged its entry; close ${t.label} and run the command again`);
}
