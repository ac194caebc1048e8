"""``hwcollab dkim keygen``: a private key only its owner reads, and a DNS record that verifies
what the notifier signs with it (checked by dkimpy)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import dkim
import pytest
from typer.testing import CliRunner

from hwcollab_cli.main import app
from hwcollab_common.dkim_keys import load_signing_key
from hwcollab_notifier.mail.signing import DkimSigner

MESSAGE = (
    b"From: HWcollab <opportunities@hwcollab.example>\r\nTo: pat@example.org\r\n"
    b"Subject: Hello\r\nDate: Tue, 24 Nov 2026 15:00:00 +0000\r\n"
    b"Message-ID: <m.1@hwcollab.example>\r\n\r\nHello, Pat.\r\n"
)


def txt_value(line: str) -> bytes:
    """The record's strings joined, as a resolver hands them to a verifier."""
    return "".join(re.findall(r'"([^"]*)"', line)).encode()


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_keygen_writes_a_private_key_and_prints_a_record_that_verifies(
    tmp_path: Path, algorithm: str
) -> None:
    key_file = tmp_path / "dkim.pem"
    result = CliRunner().invoke(
        app,
        [
            "dkim", "keygen", str(key_file), "--domain", "hwcollab.example",
            "--selector", "hw2026a", "--algorithm", algorithm,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (line,) = [ln for ln in result.output.splitlines() if "IN TXT" in ln]
    assert line.startswith("hw2026a._domainkey.hwcollab.example. IN TXT ")
    assert f"k={algorithm};".encode() in txt_value(line)

    signer = DkimSigner(
        domain="hwcollab.example", selector="hw2026a", key=load_signing_key(key_file.read_bytes())
    )
    record = txt_value(line)
    assert dkim.verify(signer.sign(MESSAGE), dnsfunc=lambda name, timeout=5: record)

    again = CliRunner().invoke(
        app, ["dkim", "record", str(key_file), "--domain", "hwcollab.example"]
    )
    assert txt_value(again.output) == record


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_text("in use")
    result = CliRunner().invoke(
        app, ["dkim", "keygen", str(key_file), "--domain", "hwcollab.example"]
    )
    assert result.exit_code == 1
    assert key_file.read_text() == "in use"
