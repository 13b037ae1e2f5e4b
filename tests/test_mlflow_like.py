"""MLflow's LIKE and ILIKE (service/mlflow/like.py): SQL's meaning, in linear time.

The matcher is checked against a plain reference on random patterns; through the real
server, a pattern that once held the GIL for minutes (issue 15: 46 `%` took 25.8 s, and
/healthz waited 11.9 s) answers at once on both search routes, and other requests go on.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.mlflow.like import LikePattern, like
from service.mlflow.search import MAX_FILTER_LENGTH
from tests.support import live_server
from tests.test_bad_input import assert_mlflow_error

MLFLOW = "/api/2.0/mlflow"
PATHOLOGICAL = "%" * 1000 + "x"  # no value ends in x: every way to split is tried


def reference(pattern: str, value: str, ignore_case: bool) -> bool:
    """LIKE as the regular expression it reads as: right, and exponential in the `%`s."""
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return (
        re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
        is not None
    )


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("vision%", "vision-b", True),
        ("vision%", "Vision-b", False),  # LIKE tells case apart
        ("%sion", "vision", True),
        ("a_c", "abc", True),
        ("a_c", "ac", False),  # `_` is exactly one character
        ("a_c", "abbc", False),
        ("_", "\n", True),
        ("a%c", "ac", True),  # `%` is any run, none included
        ("a%c", "a b\nc", True),
        ("a%c", "acb", False),
        ("%", "", True),
        ("", "", True),
        ("", "a", False),
        ("%%a%%b%%", "xaxbx", True),  # repeated `%` is one
        ("%a%b%", "ba", False),  # segments keep their order
        ("ab%b", "ab", False),  # the head and the tail may not overlap
        ("ab%ba", "aba", False),
        ("%aa%aa", "aaa", False),
        ("%aa%aa", "aaaa", True),
        ("%a_a%", "xxaxa", True),
        ("%a__b%", "xa_ab", True),
        ("%a__b%", "a_a_b", False),
        ("é_", "éx", True),
        # Regular expressions' metacharacters are themselves.
        ("a.c", "abc", False),
        ("a.c", "a.c", True),
        ("(x)*", "(x)*", True),
        ("(x)*", "xx", False),
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("\\d+$", "\\d+$", True),
        ("\\d+$", "7", False),
        ("a|b", "a", False),
        ("^a?{2}", "^a?{2}", True),
    ],
)
def test_like_has_sqls_meaning(pattern: str, value: str, expected: bool) -> None:
    assert like(pattern, value) is expected
    assert reference(pattern, value, ignore_case=False) is expected


def test_ilike_ignores_case_and_like_does_not() -> None:
    assert like("VISION%", "vision-b", ignore_case=True)
    assert like("%_B", "vision-b", ignore_case=True)
    assert like("Straße", "STRASSE", ignore_case=True) is False  # no length-changing folds
    assert not like("VISION%", "vision-b")
    assert like("%É", "café", ignore_case=True)


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(
    pattern=st.text(alphabet="aAb%_.*\\", max_size=10),
    value=st.text(alphabet="aAb.*\\\n", max_size=12),
    ignore_case=st.booleans(),
)
def test_like_agrees_with_the_reference(pattern: str, value: str, ignore_case: bool) -> None:
    assert LikePattern(pattern, ignore_case).matches(value) is reference(
        pattern, value, ignore_case
    )


def test_a_thousand_percents_take_no_time() -> None:
    """Linear in the value: generous bounds, where the regular expression never ends."""
    started = time.monotonic()
    assert not like(PATHOLOGICAL, "FINISHED" * 1000)
    assert not like("%" + "_%" * 1000 + "x", "a" * 100_000)
    assert not like("%" + "a_" * 1000 + "x%", "a" * 100_000)
    assert like("%" + "_" * 2000 + "%", "b" * 100_000)
    assert time.monotonic() - started < 5


def test_the_filter_has_a_length_cap(client: TestClient) -> None:
    at_the_cap = "attributes.status LIKE '%'" + " " * (MAX_FILTER_LENGTH - 26)
    assert len(at_the_cap) == MAX_FILTER_LENGTH
    found = client.post(f"{MLFLOW}/runs/search", json={"filter": at_the_cap})
    assert found.status_code == 200, found.text
    over = at_the_cap + " "
    for response in (
        client.post(f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"], "filter": over}),
        client.post(f"{MLFLOW}/experiments/search", json={"filter": over}),
        client.get(f"{MLFLOW}/experiments/search", params={"filter": over}),
    ):
        message = assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
        assert f"at most {MAX_FILTER_LENGTH}" in message


def _searches() -> list[tuple[str, dict[str, Any]]]:
    runs = {"experiment_ids": ["0"]}
    return [
        ("runs/search", {**runs, "filter": f"attributes.status LIKE '{PATHOLOGICAL}'"}),
        ("runs/search", {**runs, "filter": f"tags.team ILIKE '{PATHOLOGICAL}'"}),
        ("runs/search", {**runs, "filter": f"attributes.run_name LIKE '%{'_%' * 1000}x'"}),
        ("experiments/search", {"filter": f"name LIKE '{PATHOLOGICAL}'"}),
        ("experiments/search", {"filter": f"name ILIKE '{PATHOLOGICAL}'"}),
    ]


def _search_in_background(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Sends the search from a thread; the dict gets its `status` and `seconds`."""
    outcome: dict[str, Any] = {}

    def send() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=url, timeout=60) as http:
            outcome["status"] = http.post(f"{MLFLOW}/{path}", json=body).status_code
        outcome["seconds"] = time.monotonic() - started

    outcome["thread"] = threading.Thread(target=send, daemon=True)
    outcome["thread"].start()
    return outcome


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_pathological_like_answers_at_once_and_delays_no_one(
    database_url: str, tmp_path: Path
) -> None:
    env = {"MOMENTUM_DATABASE_URL": database_url, "MOMENTUM_DATA_DIR": str(tmp_path)}
    with live_server(env) as url, httpx.Client(base_url=url, timeout=60) as http:
        for index in range(20):
            tags = [{"key": "team", "value": "vision-" * 50}]
            created = http.post(
                f"{MLFLOW}/runs/create",
                json={"experiment_id": "0", "run_name": f"run-{index}-" * 20, "tags": tags},
            )
            assert created.status_code == 200, created.text
        experiment = http.post(f"{MLFLOW}/experiments/create", json={"name": "digits-" * 30})
        assert experiment.status_code == 200, experiment.text
        for path, body in _searches():
            search = _search_in_background(url, path, body)
            pings = []
            window_ends = time.monotonic() + 1.0
            while time.monotonic() < window_ends:  # /healthz meanwhile, each timed
                started = time.monotonic()
                assert http.get("/healthz", timeout=10).status_code == 200
                pings.append(time.monotonic() - started)
                time.sleep(0.05)
            # Generous bounds: the regular expression held /healthz for seconds, and
            # took minutes itself.
            assert max(pings) < 2, (path, body["filter"][:40], pings)
            search["thread"].join(timeout=60)
            assert search.get("status") == 200, (path, body["filter"][:40], search)
            assert search["seconds"] < 3, (path, body["filter"][:40], search["seconds"])
