"""CI: which provider and event a run is (providers), where its wheels go (channels), the
jobs of the matrix (jobs), one job planned and run (job), cibuildwheel (cibuildwheel,
cibw_step) and the CI configs generated from settings.toml (configs)."""
