from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwcollab_common.emails import InvalidEmailError, email_key, normalize_email

_ATOM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1
)
ascii_addresses = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
    _ATOM,
    st.sampled_from(["org", "com", "ORG", "Net", "us"]),
)


def _recase(text: str, flips: list[bool]) -> str:
    flips = (flips + [False] * len(text))[: len(text)]
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@given(ascii_addresses, st.lists(st.booleans()), st.sampled_from(["", " ", "\t", " \n"]))
def test_case_and_surrounding_space_do_not_make_another_address(
    address: str, flips: list[bool], space: str
) -> None:
    assert email_key(f"{space}{_recase(address, flips)}{space}") == email_key(address)


@given(st.text())
def test_the_key_never_raises_and_is_its_own_key(text: str) -> None:
    key = email_key(text)
    assert email_key(key) == key


@given(ascii_addresses)
def test_an_ascii_address_and_its_stored_form_have_one_key(address: str) -> None:
    stored = normalize_email(address)
    assert email_key(stored) == email_key(address) == stored.lower()


@pytest.mark.parametrize(
    "address",
    ["  Jordan.Lee@EXAMPLE.org ", "a@xn--bcher-kva.de", "A@BÜCHER.de", "STRAßE@x.de"],
)
def test_the_key_of_a_stored_address_is_the_address_lower_cased(address: str) -> None:
    stored = normalize_email(address)
    assert email_key(stored) == stored.lower()
    assert email_key(address) == email_key(stored)


def test_the_stored_form_keeps_the_local_part_and_lowers_the_domain() -> None:
    assert normalize_email("  Jordan.Lee@EXAMPLE.org ") == "Jordan.Lee@example.org"


def test_a_punycode_domain_is_the_same_as_its_unicode_form() -> None:
    assert email_key("Ana@XN--BCHER-KVA.de") == email_key("ana@bücher.de") == "ana@bücher.de"


def test_composed_and_decomposed_accents_are_one_address() -> None:
    decomposed = unicodedata.normalize("NFD", "josé@example.org")
    assert decomposed != "josé@example.org"
    assert email_key(decomposed) == email_key("José@example.org")


def test_sharp_s_is_not_ss() -> None:
    assert email_key("STRAßE@example.de") == "straße@example.de"
    assert email_key("strasse@example.de") != email_key("straße@example.de")


def test_a_label_that_is_not_punycode_stays_as_it_is() -> None:
    assert email_key("a@xn--ü.example") == "a@xn--ü.example"


@pytest.mark.parametrize("address", ["not-an-email", "a@b", "two@@example.org", ""])
def test_the_stored_form_is_syntax_checked(address: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalize_email(address)
