"""Library sources from Debian source packages (multibuild.debian.source)."""
