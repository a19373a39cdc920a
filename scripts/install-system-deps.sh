#!/usr/bin/env bash
# Checks, and installs where it can, what salespulse needs from the system:
#   Java 17+ and Maven (to fetch and run the Kafka broker), and the Debian packages
#   redis-server, prometheus (with promtool), prometheus-alertmanager, kcat, and chromium (the TV wallboard's
#   browser test).
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

missing_pkgs=()
command -v redis-server >/dev/null || missing_pkgs+=(redis-server)
command -v prometheus >/dev/null || missing_pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing_pkgs+=(prometheus-alertmanager)
command -v kcat >/dev/null || missing_pkgs+=(kcat)
command -v chromium >/dev/null || missing_pkgs+=(chromium)
command -v java >/dev/null || missing_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing_pkgs+=(maven)

if [ ${#missing_pkgs[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "salespulse needs these Debian packages: ${missing_pkgs[*]}" >&2
  echo "Run as root, then run make again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "installing Debian packages: ${missing_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
# The Debian packages would start services of their own where an init system runs: the
# project starts its own instances on free ports instead, so stop those if they started.
if command -v service >/dev/null; then
  service redis-server stop >/dev/null 2>&1 || true
  service prometheus stop >/dev/null 2>&1 || true
  service prometheus-alertmanager stop >/dev/null 2>&1 || true
fi
