# shellcheck shell=bash
# Helpers for config.sh hooks, loaded before config.sh by multibuild. Documented in README.rst.
#
#   build_library NAME VERSION URL SHA256 SYSTEM [ARGS...]
#       Fetch a source tarball (from $MB_MIRROR_DIRS first, then URL; sha256 checked), build it
#       with SYSTEM (configure | cmake | meson | make) into $BUILD_PREFIX, cached.
#   require_tool TOOL...
#       Fail with one clear message if a command-line tool is missing.
#   fetch_debian_source SRCPKG VERSION ORIG_SHA256 [--patch NAME]...
#       apt-get source SRCPKG=VERSION through a private apt configuration (deb-src entries
#       derived from the system's deb entries), checked against the .dsc and ORIG_SHA256; sets
#       DEBIAN_ORIG and DEBIAN_ORIG_SHA256 (the upstream tarball, for build_library),
#       DEBIAN_TARBALL (the .debian.tar.*) and DEBIAN_PATCHES (the named patches of
#       debian/patches as files joined with ":", in the order given: one build_library --patch
#       "$DEBIAN_PATCHES" applies them all).

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

fetch_debian_source() {
    if [ $# -lt 3 ]; then
        echo "usage: fetch_debian_source SRCPKG VERSION ORIG_SHA256 [--patch NAME]..." >&2
        return 2
    fi
    local package=$1 version=$2 sha=$3 out
    shift 3
    out=$(mb_engine multibuild.debian.source fetch "$package" --version "$version" \
        --orig-sha256 "$sha" --mirror "$MB_CACHE_DIR/debian-mirror" \
        --cache-dir "$MB_CACHE_DIR/debian-source" "$@") || mb_failed $? fetch_debian_source
    # The four values config.sh uses (the helper prints shell-quoted NAME=VALUE lines).
    local line key value
    while IFS= read -r line; do
        key=${line%%=*}
        eval "value=${line#*=}"
        # shellcheck disable=SC2034  # set for config.sh
        case "$key" in
            orig_file) DEBIAN_ORIG=$value ;;
            orig_sha256) DEBIAN_ORIG_SHA256=$value ;;
            debian_tarball) DEBIAN_TARBALL=$value ;;
            patches) DEBIAN_PATCHES=$value ;;
        esac
    done <<< "$out"
}
