"""The release manager's tools: fetch a release's wheels from a container, check it against the
build matrix, sign it and upload it to a package index; move BUILD_COMMIT and trigger builds.

Commands (each module's `main(argv) -> int`, wrapped by scripts/): wheel_uploader,
release_status, set_build_commit, trigger_build.
"""
