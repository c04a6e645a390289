"""A refusal's reason starts with its stable code; the code is read back as a Refusal,
not tested for as a substring (the provider resends on a new session on BAD_PROOF)."""

from __future__ import annotations

from iomt.core.listener import Refusal


def test_the_code_a_reason_starts_with_is_read_back() -> None:
    for code in Refusal:
        assert Refusal.of(f"{code.value}: because") is code
        assert Refusal.of(code.value) is code
    assert Refusal.of("bad-proof: no session on record") is Refusal.BAD_PROOF


def test_a_reason_without_a_code_is_none() -> None:
    assert Refusal.of("centralized mode: ask the central server") is None
    assert Refusal.of("it said bad-proof: later") is None
    assert Refusal.of("") is None
