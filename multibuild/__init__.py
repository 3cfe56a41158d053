"""scipy-wheels' build engine: pinned commit -> fresh libraries -> wheel -> repaired -> tested."""

__version__ = "0.1.0"
