// Loaded with `node --import`: logs the URL of every module the ESM loader resolves to $RESOLVE_LOG.
import { register } from 'node:module';

register('./resolve-log-hooks.mjs', import.meta.url);
