"""``hwcollab fanout --watch``: the progress bar follows the notifier's answers until nothing is
pending."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from hwcollab_cli.fanout import follow, table_of


def _answer(**counts: int) -> dict[str, Any]:
    body = {"pending": 0, "sent": 0, "dropped": 0, "failed": 0} | counts
    return {"opening_id": "o1", "matches": sum(body.values()), **body}


def test_watching_polls_until_every_match_is_settled() -> None:
    answers = [
        _answer(pending=100),
        _answer(pending=50, sent=50),
        _answer(sent=97, dropped=2, failed=1),
        _answer(sent=97, dropped=2, failed=1),  # never asked for: the previous one settled all
    ]
    asked: list[dict[str, Any]] = []
    pauses: list[float] = []

    def fetch() -> dict[str, Any]:
        asked.append(answers[len(asked)])
        return asked[-1]

    out = Console(record=True, width=80, force_terminal=False)
    last = follow(fetch, out=out, interval=0.5, sleep=pauses.append)

    assert len(asked) == 3
    assert pauses == [0.5, 0.5]
    assert last == answers[2]
    shown = out.export_text()
    assert "100/100" in shown
    assert "sent 97" in shown


def test_the_table_shows_every_status() -> None:
    out = Console(record=True, width=160)
    out.print(table_of(_answer(pending=3, sent=3_000, dropped=4, failed=5)))
    shown = out.export_text()
    assert "opening o1: 3012 matches" in shown
    for header, value in [("pending", "1"), ("sent", "3,000"), ("failed", "5")]:
        assert header in shown
        assert value in shown
