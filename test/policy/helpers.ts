import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, type ConfigIssue } from '../../src/config/load-yaml.js';
import type { Io } from '../../src/cli/command.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import type { CallContext, Policy } from '../../src/policy/types.js';
import { tempDir } from '../helpers/tmp.js';

/** Loads policy texts from memory: the first is /p/main.yaml, `extra` maps more paths to texts. */
export function policyOf(text: string, extra: Record<string, string> = {}): Policy {
  const files: Record<string, string> = { '/p/main.yaml': text, ...extra };
  const top = Object.keys(files).filter((f) => dirname(f) === '/p').sort();
  return loadPolicyFiles(top, memorySource(files));
}

/** A policy from a list of rules written as YAML (indented under `rules:`). */
export function rules(yamlRules: string, head = 'version: 1\n'): Policy {
  return policyOf(`${head}rules:\n${yamlRules}`);
}

export function call(over: Partial<CallContext> = {}): CallContext {
  return {
    agent: 'coder-1',
    connector: 'github',
    tool: 'github__create_issue',
    upstreamTool: 'create_issue',
    args: {},
    time: new Date('2025-01-06T10:00:00Z'),
    ...over,
  };
}

/** The ConfigError issues thrown by `fn` (fails the test when nothing is thrown). */
export function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

export function tmpDir(files: Record<string, string> = {}): string {
  const dir = tempDir('gatehouse-policy-');
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

export function captureIo(env: NodeJS.ProcessEnv = {}): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const io: Io = {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env,
    stdin: process.stdin,
    isTTY: false,
  };
  return { io, out: () => out, err: () => err };
}
