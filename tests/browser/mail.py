"""The mail the SMTP sink received, parsed as a mail client would read it."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

from hwcollab_testing.smtp import ReceivedMessage, SmtpSink
from hwcollab_testing.waiting import eventually_sync

from .support import MAIL_TIMEOUT

URL = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class Mail:
    """One message the SMTP sink received, parsed as a mail client would."""

    message: EmailMessage
    recipients: tuple[str, ...]
    text: str
    html: str

    @classmethod
    def parse(cls, raw: bytes, recipients: Iterable[str]) -> Mail:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        plain = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        html = rich.get_content() if rich is not None else ""
        return cls(
            message=message,
            recipients=tuple(r.lower() for r in recipients),
            text=plain.get_content() if plain is not None else "",
            html=html,
        )

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    @property
    def kind(self) -> str:
        return self.header("X-HWcollab-Kind")

    @property
    def opening_ids(self) -> list[str]:
        raw = self.header("X-HWcollab-Opening-Ids")
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def text_links(self) -> list[str]:
        return [url.rstrip(".,;") for url in URL.findall(self.text)]

    def link(self, path: str) -> str:
        """The first link (plain-text part) whose path starts with ``path`` (e.g. ``/confirm``)."""
        for url in self.text_links:
            if httpx.URL(url).path.startswith(path):
                return url
        raise AssertionError(f"no {path} link in the mail {self.subject!r}:\n{self.text}")

    def labelled(self, label: str) -> str:
        """The URL after ``label:`` in the plain-text part (e.g. ``Apply: https://…``)."""
        match = re.search(rf"^{re.escape(label)}: (https?://\S+)", self.text, re.MULTILINE)
        assert match, f"no {label!r} link in the mail {self.subject!r}:\n{self.text}"
        return match.group(1)

    @property
    def unsubscribe_url(self) -> str:
        header = self.header("List-Unsubscribe")
        match = re.search(r"<(https?://[^>]+)>", header)
        assert match, f"no https List-Unsubscribe URL in {header!r}"
        return match.group(1)

    def describe(self) -> str:
        return f"{self.subject!r} to {', '.join(self.recipients)} (openings {self.opening_ids})"


class Inbox:
    """The mail the SMTP sink received, by recipient."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._parsed: dict[int, tuple[ReceivedMessage, Mail]] = {}

    def all(self) -> list[Mail]:
        mails = []
        for received in self._sink.snapshot():
            cached = self._parsed.get(id(received))
            if cached is None or cached[0] is not received:
                cached = (received, Mail.parse(received.raw, received.rcpt_tos))
                self._parsed[id(received)] = cached
            mails.append(cached[1])
        return mails

    def to(self, address: str) -> list[Mail]:
        address = address.lower()
        return [mail for mail in self.all() if address in mail.recipients]

    def about(self, address: str, opening_id: str) -> list[Mail]:
        return [mail for mail in self.to(address) if opening_id in mail.opening_ids]

    def wait(
        self,
        address: str,
        match: Callable[[Mail], bool] = lambda _: True,
        *,
        what: str,
        timeout: float = MAIL_TIMEOUT,
    ) -> Mail:
        def found() -> Mail | None:
            return next((mail for mail in self.to(address) if match(mail)), None)

        return eventually_sync(found, timeout=timeout, what=f"{what} for {address}")
