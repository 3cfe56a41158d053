"""The Debian package behind each tool `--install-system-deps` may install, checked against
this machine's own package lists (apt-cache): autotools for a tree without configure too."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from multibuild.util.system import DEBIAN_PACKAGES


def test_every_tool_names_a_debian_package_that_provides_it() -> None:
    if shutil.which("apt-cache") is None:
        pytest.skip("needs apt-cache (Debian or Ubuntu)")
    for tool in ("autoreconf", "libtoolize", "aclocal", "ccache"):
        assert tool in DEBIAN_PACKAGES
    packages = sorted(set(DEBIAN_PACKAGES.values()))
    done = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages],
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = {line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
             if line.startswith("Package:")}  # fmt: skip
    assert shown == set(packages)
    if shutil.which("dpkg-query"):
        # Where a package is installed, it has the tool named for it.
        for tool, package in DEBIAN_PACKAGES.items():
            listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True,
                                    text=True, check=False)  # fmt: skip
            if listed.returncode == 0 and "/usr/bin/" in listed.stdout:
                assert f"/bin/{tool}\n" in listed.stdout + "\n" or tool in ("cc", "c++"), tool
