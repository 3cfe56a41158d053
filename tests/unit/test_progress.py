"""wheel-uploader's progress line."""

from __future__ import annotations

import io

from multibuild.release.fetch import Progress


def test_progress_bar_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(2, 4 << 20, stream=stream, enabled=True)
    progress.advance(2 << 20)
    progress.finished("a.whl", "downloaded")
    progress.advance(2 << 20)
    progress.finished("b.whl", "downloaded")
    progress.close()
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("[" + "=" * 30 + "] 2/2 files 4.0 MiB/4.0 MiB")
    quiet = io.StringIO()
    verbose = Progress(1, 10, stream=quiet, enabled=False, verbose=True)
    verbose.finished("a.whl", "kept")
    assert quiet.getvalue() == "  kept: a.whl\n"
