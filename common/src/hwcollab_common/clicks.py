"""Click-through links of alert emails: the notifier writes them, the subscriber service's
redirect (``GET {SUBSCRIBER_PUBLIC_URL}/r?token=…``) reads them, records the reader's engagement
and sends them on.

A token is signed (purpose ``click``) and carries the subscriber, the opening, which link it is
and, for an apply link, the employer's own URL. The target never comes from the request: an
opening's page is derived from its id and ``EMPLOYER_PUBLIC_URL``, an apply link is the URL the
notifier signed, and only ``http``/``https`` targets are followed. No pixel, nothing else is
tracked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from hwcollab_common.tokens import LinkSigner, Purpose, TokenInvalidError

CLICK_PATH = "/r"
ClickLink = Literal["details", "apply"]
_CODES: dict[ClickLink, str] = {"details": "d", "apply": "a"}
_LINKS: dict[str, ClickLink] = {code: link for link, code in _CODES.items()}


@dataclass(frozen=True, slots=True)
class Click:
    subscriber_id: str
    opening_id: str
    link: ClickLink
    target: str
    """Where the reader goes: the opening's page or the employer's apply link."""


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class ClickLinks:
    def __init__(
        self, signer: LinkSigner, *, subscriber_public_url: str, employer_public_url: str
    ) -> None:
        self._signer = signer
        self._redirect = f"{subscriber_public_url.rstrip('/')}{CLICK_PATH}?token="
        self._employer = employer_public_url.rstrip("/")

    def opening_url(self, opening_id: str) -> str:
        return f"{self._employer}/openings/{quote(opening_id, safe='')}"

    def url(
        self, subscriber_id: str, opening_id: str, link: ClickLink, *, apply_url: str = ""
    ) -> str:
        """The redirect link for one reader and one link of one opening (an apply link carries
        its target, signed)."""
        target = apply_url if link == "apply" else ""
        token = self._signer.sign_claims(
            Purpose.CLICK, (subscriber_id, opening_id, _CODES[link], target)
        )
        return self._redirect + token

    def read(self, token: str) -> Click:
        """The click a token stands for; raises :class:`hwcollab_common.tokens.TokenError`."""
        subscriber_id, opening_id, code, target = self._signer.verify_claims(
            Purpose.CLICK, token, count=4
        )
        link = _LINKS.get(code)
        if not subscriber_id or not opening_id or link is None:
            raise TokenInvalidError
        if link == "details":
            target = self.opening_url(opening_id)
        elif not is_web_url(target):
            raise TokenInvalidError
        return Click(subscriber_id=subscriber_id, opening_id=opening_id, link=link, target=target)
