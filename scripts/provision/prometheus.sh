#!/usr/bin/env bash
# prometheus and promtool (Debian package), no distro service left running.
# Prints PROMETHEUS_BIN=… and PROMTOOL_BIN=… on stdout.
exec bash "$(dirname "$0")/apt-package.sh" prometheus prometheus prometheus prometheus promtool
