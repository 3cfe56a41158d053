"""Secrets: what builds never get (one list), and the one Redactor every output goes through,
in every encoding an output shows a value in."""

from __future__ import annotations

import base64
import html
import io
import json
import urllib.parse
from pathlib import Path

from multibuild.engine.record import BuildRecord
from multibuild.log import Logger
from multibuild.util.secrets import (
    UPLOAD_CREDENTIALS,
    RedactingStream,
    Redactor,
    secret_values,
    withheld,
)

# Recognisable fake secrets (none of them is a real credential).
ST_KEY = "FAKE-st-key-0001"
AWS_KEY = "FAKE/aws+secret=0002&<x>"
TWINE = "pypi-FAKEtwinepassword0003"
GITHUB = "ghp_FAKEgithubtoken0004"
ANACONDA = "FAKE-anaconda-0005"
MULTILINE = "FAKE-line-one-0006\nFAKE-line-two-0007"
ENV = {
    "PATH": "/usr/bin",
    "HOME": "/root",
    "ST_AUTH": "https://swift.example/auth/v1.0",
    "ST_USER": "acct:user",
    "ST_KEY": ST_KEY,
    "AWS_ACCESS_KEY_ID": "FAKEACCESSKEY",
    "AWS_SECRET_ACCESS_KEY": AWS_KEY,
    "AWS_ENDPOINT_URL": "https://s3.example",
    "TWINE_USERNAME": "__token__",
    "TWINE_PASSWORD": TWINE,
    "GITHUB_TOKEN": GITHUB,
    "ANACONDA_API_TOKEN": ANACONDA,
    "OS_PASSWORD": MULTILINE,
    "PIP_INDEX_URL": "https://reader:FAKE-pip-0008@pypi.example/simple",
}
SECRETS = (ST_KEY, AWS_KEY, TWINE, GITHUB, ANACONDA, "FAKE-pip-0008")


def test_builds_get_no_credential() -> None:
    kept = withheld(ENV)
    assert set(kept) == {"PATH", "HOME", "PIP_INDEX_URL"}
    for name in (*UPLOAD_CREDENTIALS, "TWINE_PASSWORD", "GITHUB_TOKEN", "ANACONDA_API_TOKEN"):
        assert name not in withheld({name: "x"})
        assert f"{name}_FILE" not in withheld({f"{name}_FILE": "/x"})


def test_secret_values_come_from_names_files_and_urls(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("FAKE-from-a-file-0009\n")
    values = secret_values({**ENV, "MY_KEY_FILE": str(key_file), "SHORT_TOKEN": "abc"})
    assert "FAKE-from-a-file-0009" in values
    assert "FAKE-pip-0008" in values  # the password of a URL in any variable
    assert "abc" not in values  # too short to hide safely
    assert "acct:user" not in values and "/usr/bin" not in values


def test_every_encoding_is_hidden() -> None:
    redact = Redactor.from_environ(ENV)
    shown = [
        *SECRETS,
        *MULTILINE.splitlines(),
        json.dumps(MULTILINE),  # a JSON record: the newline escaped
        repr(MULTILINE),
        urllib.parse.quote(AWS_KEY, safe=""),
        urllib.parse.quote_plus(AWS_KEY),
        base64.b64encode(GITHUB.encode()).decode(),
        # HTTP basic auth of a known pair, and of a PyPI token.
        base64.b64encode(f"acct:user:{ST_KEY}".encode()).decode(),
        base64.b64encode(f"__token__:{TWINE}".encode()).decode(),
        html.escape(AWS_KEY),  # a page
    ]
    for text in shown:
        line = f"before {text} after"
        out = redact(line)
        assert out.startswith("before ") and out.endswith(" after"), out
        for secret in (*SECRETS, *MULTILINE.splitlines()):
            assert secret not in out, (text, out)
        assert "***" in out
    # Credentials in any URL, known or not, and what is not secret stays.
    assert redact("clone https://bob:hunter2@git.example/x.git") == (
        "clone https://***@git.example/x.git"
    )
    assert redact("user acct:user at /root") == "user acct:user at /root"


def test_command_line_url_passwords_are_secrets() -> None:
    argv = ["--repository-url", "https://release:FAKE-cli-0010@upload.example/"]
    redact = Redactor.from_environ({}, argv)
    assert redact("error: FAKE-cli-0010 refused") == "error: *** refused"
    assert "FAKE-cli-0010" in redact.secrets


def test_streams_logs_and_records_are_redacted(tmp_path: Path) -> None:
    redact = Redactor.from_environ(ENV)
    out = io.StringIO()
    stream = RedactingStream(out, redact)
    for piece in ("key=FAKE-st-", "key-0001 and ", GITHUB[:5], GITHUB[5:], "\npartial "):
        stream.write(piece)  # a secret split across writes
    stream.write(TWINE)
    stream.flush()
    assert out.getvalue() == "key=*** and ***\npartial ***"
    # The build log: a hook's output, a message, a multi-line key printed line by line.
    console = io.StringIO()
    logger = Logger(stream=console, verbose=True, redact=redact)
    logger.open_file(tmp_path / "build.log")
    for line in (f"token {GITHUB}", *MULTILINE.splitlines(), f"url {urllib.parse.quote(AWS_KEY)}"):
        logger.output(line)
    logger.info(f"note {ANACONDA}")
    logger.close()
    for text in ((tmp_path / "build.log").read_text(), console.getvalue()):
        assert not any(secret in text for secret in (*SECRETS, *MULTILINE.splitlines())), text
    # A failed build's record: its error holds the hook's last lines.
    record = BuildRecord(project="p", platform="linux", plat="x86_64")
    record.error = f"hook pre_build failed:\n    {ST_KEY}\n    {MULTILINE}"
    path = record.write(tmp_path, redact)
    text = path.read_text()
    assert ST_KEY not in text and "FAKE-line" not in text
    assert json.loads(text)["error"].count("***") >= 2
