# Helpers for config.sh hooks, loaded before config.sh by multibuild. Documented in README.rst.
#
#   build_library NAME VERSION URL SHA256 SYSTEM [ARGS...]
#       Fetch a source tarball (from $MB_MIRROR_DIRS first, then URL; sha256 checked), build it
#       with SYSTEM (configure | cmake | meson | make) into $BUILD_PREFIX, cached.
#   require_tool TOOL...
#       Fail with one clear message if a command-line tool is missing.

# The helpers run the engine that runs this hook (MB_ENGINE_ROOT), not another installed one.
mb_engine() {
    PYTHONPATH="$MB_ENGINE_ROOT${PYTHONPATH:+:$PYTHONPATH}" "$MB_PYTHON" -m "$@"
}

# A helper that fails says so to the engine (MB_HOOK_FAILURE), so the build ends with the
# helper's own exit code (README: 4 a missing tool, 6 a library), not the hook's 5.
mb_failed() {
    local code=$1 helper=$2
    [ -n "${MB_HOOK_FAILURE:-}" ] && printf '%s %s\n' "$code" "$helper" > "$MB_HOOK_FAILURE"
    return "$code"
}

build_library() {
    mb_engine multibuild.engine.libraries "$@" || mb_failed $? build_library
}

require_tool() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "multibuild: this build needs ${missing[*]} (not found on PATH)" >&2
        mb_failed 4 require_tool
    fi
}
