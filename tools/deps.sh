#!/usr/bin/env bash
# Makes sure the Debian packages the course needs are installed.
# As root it installs what is missing; otherwise it prints the one command to run.
set -euo pipefail

PACKAGES=(
  make g++ clang          # compilers: g++ 12 builds, clang 14 checks warnings
  catch2                  # unit tests (catch2/catch.hpp, v2)
  python3 python3-pytest  # the checker
  python3-yaml            # its self-test of the CI templates (grading/*.yml)
  tshark                  # dumpcap and tshark: packet captures
  strace gdb              # system call traces, thread stacks
  iproute2 util-linux     # ip and unshare: the checker's own network namespace
  inotify-tools           # make watch-NN
  tmux                    # make demo-NN: the instructor's live demos (and make test-demos)
  netcat-openbsd curl     # poking servers by hand
  memcached python3-pymemcache libmemcached-tools   # WeensyDB: the real thing and real clients
  gnuplot-nox             # make bench-pollers draws docs/select-vs-epoll.svg
  nginx                   # make bench-handshake: a real server's packets beside lesson 15's
  aria2                   # make bench-download: aria2c -x N, parallel ranges beside lesson 16's
  gzip sqlite3            # lesson 17: gzip -dc into sqlite3 .import through a FIFO
  mkdocs mkdocs-material  # make site: the course as a website
  chromium                # make test-site: every page opened in a headless browser
)

if ! command -v dpkg-query >/dev/null; then
  echo "[deps] not a Debian-like system: install the equivalents of: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "[deps] missing Debian packages: ${missing[*]}" >&2
  echo "[deps] install them with:" >&2
  echo "    sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "[deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[deps] done"
