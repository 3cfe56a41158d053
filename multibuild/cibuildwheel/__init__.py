"""The cibuildwheel route: cibuildwheel.toml (config), one run of cibuildwheel for a job
(route), the container it builds Linux wheels in (container) and the before-build and
test-command step cibuildwheel calls (step)."""
