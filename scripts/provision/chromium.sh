#!/usr/bin/env bash
# Debian's headless-capable Chromium for the console's browser test
# (test/integration/console-browser.test.ts drives it with playwright-core;
# no browser is ever downloaded by npm). It has no service to stop.
exec bash "$(dirname "$0")/apt-package.sh" chromium nodewarden-no-service root chromium
