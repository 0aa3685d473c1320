#!/usr/bin/env bash
# expect: shellcheck: SC2086
# An unquoted expansion: a directory with a space removes the wrong tree.
set -euo pipefail
cache=$1
rm -rf $cache/partial
