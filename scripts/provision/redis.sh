#!/usr/bin/env bash
# redis-server and redis-cli (Debian package), no distro service left running.
# Prints REDIS_SERVER_BIN=… and REDIS_CLI_BIN=… on stdout.
exec bash "$(dirname "$0")/apt-package.sh" redis-server redis-server redis redis-server redis-cli
