#!/usr/bin/env bash
# Usage: run_hook.sh CONFIG_SH HOOK
# Loads the engine's helpers and CONFIG_SH, then runs HOOK (a bash function) with `set -e`,
# as multibuild did. Writes how far it got to $MB_HOOK_STATE so the engine can tell a broken
# config.sh from a missing or failing hook.
config=$1
hook=$2
state() { printf '%s\n' "$1" > "$MB_HOOK_STATE"; }

state syntax
bash -n "$config" || exit 2
state loading
# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/helpers.sh"
# Like multibuild's docker_build_wrap.sh: errors while loading config.sh are fatal.
set -eo pipefail
# shellcheck source=/dev/null
source "$config"
if ! declare -F "$hook" >/dev/null; then
    state missing
    exit 127
fi
state running
"$hook"
# What the hook exported reaches the wheel build (multibuild ran pre_build and the build in
# one shell): the engine reads the environment as it is now.
if [ -n "${MB_HOOK_EXPORTS:-}" ]; then
    env -0 > "$MB_HOOK_EXPORTS"
fi
