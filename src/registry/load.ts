import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadYamlConfig, type ConfigIssue } from '../config/load-yaml.js';
import { bindingIssues, bindSecrets } from '../secrets/bindings.js';
import { ConnectorSchema, type Connector } from './schema.js';

export interface Registry {
  dir: string;
  connectors: Connector[];
}

/** The line of the top-level `name:` key (for a problem found after parsing); 1 if it cannot be told. */
function nameLine(file: string): number {
  const i = readFileSync(file, 'utf8').split('\n').findIndex((l) => /^name\s*:/.test(l));
  return i < 0 ? 1 : i + 1;
}

/** Loads every `*.yaml`/`*.yml` in `dir` (one connector per file). All problems are reported together. */
export function loadRegistry(dir: string): Registry {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (e) {
    throw new ConfigError([{ file: dir, line: 0, col: 0, key: '', message: `cannot read registry directory (${(e as NodeJS.ErrnoException).code ?? e}); pass --registry DIR or set GATEHOUSE_REGISTRY` }]);
  }
  const issues: ConfigIssue[] = [];
  const connectors: Connector[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const file = join(dir, f);
    try {
      const c = { ...loadYamlConfig(file, ConnectorSchema), file } as Connector;
      const prev = seen.get(c.name);
      if (prev !== undefined) {
        issues.push({ file, line: nameLine(file), col: 1, key: 'name', message: `connector "${c.name}" is already defined in ${prev}` });
        continue;
      }
      seen.set(c.name, file);
      connectors.push(c);
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
  }
  // A secret is bound to one connector; referencing another connector's secret is an error.
  issues.push(...bindingIssues(bindSecrets(connectors).problems));
  if (issues.length > 0) throw new ConfigError(issues);
  return { dir, connectors };
}
