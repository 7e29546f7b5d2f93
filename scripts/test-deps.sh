#!/bin/sh
# Installs what the tests need beyond `npm ci`, and nothing when it is there:
#  - a real Secret Service (gnome-keyring) on a private D-Bus session bus, for
#    the keychain tests, and git for the protected-path tests (Debian/Ubuntu,
#    through apt-get, when run as root);
#  - Chromium, the distribution's own, for the console's browser tests (driven
#    by playwright-core through its executable path; nothing downloads a browser);
#  - Prometheus, the distribution's own, scraping the gateway in the metrics tests;
#  - rsyslog with rsyslog-gnutls (and openssl for a test certificate), receiving
#    the SIEM shipper's RFC 5424 messages over TCP and TLS;
#  - Node 22 for the official MCP conformance suite (it needs Node >= 22), kept
#    in .cache/node22, outside node_modules, so that `npm run` keeps the
#    machine's Node (>= 20.19) first on PATH for everything else;
#  - GitHub's REST descriptions (npm @octokit/openapi, ≈ 385 MB) for the
#    connector contract tests, kept in .cache/specs rather than devDependencies
#    so that `npm ci` for users stays small.
# Safe to run repeatedly.
set -eu

os_packages() {
  need=""
  command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus-daemon"
  command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring"
  # The protected-path tests run git inside the sandbox.
  command -v git >/dev/null 2>&1 || need="$need git"
  # The console's browser tests.
  command -v chromium >/dev/null 2>&1 || need="$need chromium"
  # The metrics tests: a real Prometheus scrapes /metrics (test/telemetry/prometheus.int.test.ts).
  command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
  # The SIEM tests: a real rsyslogd receives RFC 5424 over TCP and TLS (its gtls driver), with a certificate made by openssl.
  command -v rsyslogd >/dev/null 2>&1 || need="$need rsyslog"
  ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need="$need rsyslog-gnutls"
  command -v openssl >/dev/null 2>&1 || need="$need openssl"
  if [ -z "$need" ]; then
    echo "test-deps: dbus-daemon, gnome-keyring-daemon, git, chromium, prometheus, rsyslogd (with gtls) and openssl are present"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: missing:$need; install them with your package manager (the keychain tests need them)" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-deps: missing:$need; run as root (or: sudo apt-get install -y --no-install-recommends$need)" >&2
    exit 1
  fi
  echo "test-deps: apt-get install -y --no-install-recommends$need"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get install -y --no-install-recommends $need; then
    echo "test-deps: install failed; refreshing the package lists once (apt-get update) and retrying"
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $need
  fi
  echo "test-deps: installed:$need"
}

node22() {
  root="$(cd "$(dirname "$0")/.." && pwd)"
  bin="$root/.cache/node22/node_modules/node/bin/node"
  if [ -x "$bin" ]; then
    echo "test-deps: Node $("$bin" --version) for the conformance suite is present"
    return 0
  fi
  echo "test-deps: installing Node 22 for the conformance suite into .cache/node22 (npm package node@22.23.3)"
  mkdir -p "$root/.cache/node22"
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$root/.cache/node22" node@22.23.3
  echo "test-deps: Node $("$bin" --version) installed"
}

specs() {
  root="$(cd "$(dirname "$0")/.." && pwd)"
  spec="@octokit/openapi@23.0.2"
  pkg="$root/.cache/specs/node_modules/@octokit/openapi"
  # Present means the pinned version with the three descriptions the tests load
  # (test/connectors/contract/descriptions.ts).
  if [ "$(node -p 'require(process.argv[1]).version' "$pkg/package.json" 2>/dev/null)" = "${spec##*@}" ] \
    && [ -f "$pkg/generated/api.github.com.json" ] && [ -f "$pkg/generated/ghes-3.17.json" ] && [ -f "$pkg/generated/ghes-3.19.json" ]; then
    echo "test-deps: $spec for the connector contract tests is present"
    return 0
  fi
  echo "test-deps: installing GitHub's REST descriptions for the connector contract tests into .cache/specs (npm package $spec)"
  mkdir -p "$root/.cache/specs"
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$root/.cache/specs" "$spec"
  echo "test-deps: $spec installed"
}

os_packages
node22
specs
sh "$(dirname "$0")/agent-clis.sh"
