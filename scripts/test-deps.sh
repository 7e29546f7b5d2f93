#!/bin/sh
# Installs what the integration tests need from the OS: a real Secret Service
# (gnome-keyring) on a private D-Bus session bus. Debian/Ubuntu only; does
# nothing when everything is already there. Safe to run repeatedly.
set -eu

need=""
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus-daemon"
command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring"

if [ -z "$need" ]; then
  echo "test-deps: dbus-daemon and gnome-keyring-daemon are present; nothing to install"
  exit 0
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
if ! apt-get install -y --no-install-recommends $need; then
  echo "test-deps: install failed; refreshing the package lists once (apt-get update) and retrying"
  apt-get update
  apt-get install -y --no-install-recommends $need
fi
echo "test-deps: installed:$need"
