/**
 * The agent's own HOME inside `gatehouse run`, and what it finds there about
 * its model: the real CLI and launcher, an in-process gateway.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, type Ran } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');
let base: string;
let workspace: string;
let state: string;
let registry: string;

function run(agent: string, cmd: string, extra: string[] = []): Promise<Ran> {
  return runCli(['run', '--agent', agent, '--workspace', workspace, '--registry', registry, '--policies', join(ROOT, 'policies'), ...extra, '--', 'sh', '-c', cmd], {
    env: { HOME: base, GATEHOUSE_STATE: state },
  });
}

beforeAll(() => {
  base = tempDir('gh-home-');
  workspace = join(base, 'ws');
  state = join(base, 'state');
  registry = join(base, 'registry');
  mkdirSync(workspace, { recursive: true });
  mkdirSync(registry);
  writeFileSync(join(registry, 'anthropic.yaml'), 'name: anthropic\nkind: inference\napi: anthropic\nurl: https://api.anthropic.com\nheaders:\n  x-api-key: "${secret:anthropic-key}"\nmodels:\n  allow: ["claude-*"]\n');
  writeFileSync(join(registry, 'local.yaml'), 'name: local-llm\nkind: inference\napi: openai\nurl: http://127.0.0.1:8000\nheaders:\n  Authorization: "Bearer ${secret:local-llm-key}"\nmodels:\n  allow: ["*"]\n');
});

describe("the agent's own home", () => {
  it('HOME is <state>/homes/<agent>, kept between runs, and its .claude is the agent’s to write on the next run too', async () => {
    const first = await run('coder', 'echo "home=$HOME"; mkdir -p "$HOME/.claude" && echo one > "$HOME/.claude/settings.json"');
    expect(first.stderr).not.toMatch(/launcher|error/i);
    expect(first.stdout).toContain(`home=${join(state, 'homes', 'coder')}`);
    // A workspace's .claude would be read-only (protected); the agent's own home's is not.
    const second = await run('coder', 'echo two >> "$HOME/.claude/settings.json" && cat "$HOME/.claude/settings.json"');
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('one\ntwo\n');
  });

  it("another agent cannot see this agent's home", async () => {
    await run('coder', 'echo private > "$HOME/notes"');
    const other = await run('intruder', `cat ${JSON.stringify(join(state, 'homes', 'coder', 'notes'))} 2>&1; echo "rc=$?"`);
    expect(other.stdout).not.toContain('private');
    expect(other.stdout).toMatch(/rc=[1-9]/);
  });

  it('--home overlapping the workspace is refused (exit 2)', async () => {
    const r = await run('coder', 'true', ['--home', join(workspace, 'home')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('overlap');
  });

  it('--home-seed copies settings, keeps the agent’s own copies, and skips credential files and links', async () => {
    const seed = join(base, 'seed');
    mkdirSync(join(seed, '.codex'), { recursive: true });
    writeFileSync(join(seed, '.codex', 'config.toml'), 'model = "gpt-sim"\n');
    writeFileSync(join(seed, '.codex', 'auth.json'), '{"OPENAI_API_KEY":"sk-real"}');
    writeFileSync(join(seed, 'kept.txt'), 'from seed\n');
    await run('seeded', 'echo "from agent" > "$HOME/kept.txt"');
    const r = await run('seeded', 'cat "$HOME/.codex/config.toml" "$HOME/kept.txt"; ls -a "$HOME/.codex"', ['--home-seed', seed]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('model = "gpt-sim"');
    expect(r.stdout).toContain('from agent');
    expect(r.stdout).not.toContain('auth.json');
    expect(r.stderr).toContain('skipped .codex/auth.json (looks like a credential');
  });

  it('home-seed link attack: a symlink the agent planted in its home is not followed by the host', async () => {
    const target = join(base, 'outside-target');
    mkdirSync(target);
    // The agent leaves $HOME/.codex pointing outside its box, hoping the host writes through it.
    await run('planter', `ln -s ${JSON.stringify(target)} "$HOME/.codex"`);
    const seed = join(base, 'seed2');
    mkdirSync(join(seed, '.codex'), { recursive: true });
    writeFileSync(join(seed, '.codex', 'config.toml'), 'x = 1\n');
    const r = await run('planter', 'true', ['--home-seed', seed]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('refusing to follow it');
    expect(existsSync(join(target, 'config.toml'))).toBe(false);
  });
});

describe('what the agent finds about its models', () => {
  it('base URLs point at the gateway, keys are placeholders; no secret is inside', async () => {
    const r = await run('coder', 'env | grep -E "^(ANTHROPIC|OPENAI|GATEHOUSE_LLM)" | sort');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'ANTHROPIC_API_KEY=gatehouse-placeholder-not-a-key',
      'ANTHROPIC_BASE_URL=http://127.0.0.1:8931/llm/anthropic',
      'GATEHOUSE_LLM_ANTHROPIC_URL=http://127.0.0.1:8931/llm/anthropic',
      'GATEHOUSE_LLM_LOCAL_LLM_URL=http://127.0.0.1:8931/llm/local-llm',
      'OPENAI_API_BASE=http://127.0.0.1:8931/llm/local-llm/v1',
      'OPENAI_API_KEY=gatehouse-placeholder-not-a-key',
      'OPENAI_BASE_URL=http://127.0.0.1:8931/llm/local-llm/v1',
    ]);
  });

  it('--port moves the model URLs with the relay', async () => {
    const r = await run('coder', 'echo "$ANTHROPIC_BASE_URL"', ['--port', '9123']);
    expect(r.stdout.trim()).toBe('http://127.0.0.1:9123/llm/anthropic');
    expect(readFileSync(join(state, 'audit', 'audit.jsonl'), 'utf8')).toContain('"sandbox.opened"');
  });
});
