"""The domain ids tests draw: two xdist workers never share one, and a worker repeats none
until it has used its share."""

from __future__ import annotations

import pytest

import domains


@pytest.mark.parametrize("worker", ["gw0", "gw1"])
def test_a_worker_draws_only_its_own_share_of_domains_and_none_twice(
    worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setattr(domains, "_pool", [])
    share = [d for d in range(domains.LOWEST, domains.HIGHEST + 1) if d % 2 == int(worker[2:])]
    drawn = [domains.fresh_domain() for _ in share]
    assert sorted(drawn) == share
    assert domains.fresh_domain() in share  # the next cycle


def test_without_xdist_every_domain_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(domains, "_pool", [])
    span = range(domains.LOWEST, domains.HIGHEST + 1)
    assert sorted(domains.fresh_domain() for _ in span) == list(span)
