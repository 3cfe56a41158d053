"""What may reach git from outside: refs by git's own ref-name rules, remotes by transport.

A ref or URL that git could read as an option (`--upload-pack=CMD`) or a transport that runs
commands (`ext::sh -c CMD`) never reaches it: refs follow `git check-ref-format
--allow-onelevel` (and may not begin with `-`), remotes are local paths or file, https, ssh and
git URLs, every git call puts `--` (or `--end-of-options`) before its arguments, and git itself
is told the same (GIT_ALLOW_PROTOCOL, protocol.ext.allow=never) in case a submodule or a
redirect tries another transport.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild.util.cmd import Result, run

# Remote transports git may use; `file` only when the user gave a local path or file:// URL
# (a remote repository's submodules must not read local files).
REMOTE_PROTOCOLS = ("https", "ssh", "git")
_SCHEMES = {"https": "https", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh", "git": "git"}
# Prepended to every git command: no transport that runs commands, whatever configs say.
SAFE_CONFIG = ("-c", "protocol.ext.allow=never")

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
FULL_HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a ref name git accepts (`git check-ref-format --allow-onelevel`'s
    rules) or begins with `-`; None when it is fine. A full commit hash is fine."""
    if FULL_HASH.fullmatch(ref):
        return None
    if not ref:
        return "it is empty"
    if ref.startswith("-"):
        return "it begins with '-' (git would read it as an option)"
    if _FORBIDDEN.search(ref):
        return "it holds a space, a control character or one of ~ ^ : ? * [ \\"
    if ref == "@" or "@{" in ref:
        return "it is '@' or holds '@{'"
    if ".." in ref:
        return "it holds '..'"
    if ref.startswith("/") or ref.endswith(("/", ".")) or "//" in ref:
        return "it begins or ends with '/', ends with '.' or holds '//'"
    for part in ref.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "a part of it begins with '.' or ends with '.lock'"
    return None


def check_ref(ref: str, error: type[Exception], what: str = "ref") -> str:
    problem = ref_problem(ref)
    if problem:
        raise error(f"{what} {ref!r} is not a branch, tag or commit name: {problem}")
    return ref


def remote_problem(url: str) -> str | None:
    """Why git may not fetch from `url`; None for a local path or a file, https, ssh or git
    URL."""
    if url.startswith("-"):
        return "it begins with '-' (git would read it as an option)"
    if "::" in url:
        return "git's <transport>::<address> form runs a remote helper; not allowed"
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        return "it holds control characters"
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as problem:
        return f"it is not a valid URL ({problem})"
    if scheme in ("", "file") or len(scheme) == 1:  # a path (C:\... on Windows)
        return None
    if scheme == "http":
        return "plain http can be tampered with on the way; use https"
    if scheme not in _SCHEMES:
        return f"transport {scheme!r} is not allowed (file, https, ssh and git are)"
    return None


def check_remote(url: str, error: type[Exception], shown: str) -> str:
    problem = remote_problem(url)
    if problem:
        raise error(f"cannot use repository {shown}: {problem}")
    return url


def git_environ(environ: Mapping[str, str], *, allow_file: bool) -> dict[str, str]:
    """The environment git runs in: no prompts, and only the allowed transports."""
    protocols = ("file", *REMOTE_PROTOCOLS) if allow_file else REMOTE_PROTOCOLS
    return {
        **environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_ALLOW_PROTOCOL": ":".join(protocols),
    }


def git_command(*args: str) -> list[str]:
    """`git` with the safe configuration, then `args` (which put `--` before arguments)."""
    return ["git", *SAFE_CONFIG, *args]


def run_git(
    args: Sequence[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    errors: str = "replace",
) -> Result:
    """The one way git runs: git_command(*args) in `cwd`, output captured, never raising on a
    non-zero exit (the caller says what failed)."""
    return run(git_command(*args), cwd=cwd, env=env, timeout=timeout, errors=errors)
