"""CI: which provider and event a run is (providers), where its wheels go (channels), whether
a job of the matrix runs here (jobs), one job planned and run (plan) and the CI configs
generated from settings.toml (configs)."""
