"""service/domain_errors.py: storage and analysis refuse in domain terms; service/errors.py
gives each refusal the contract's status, code and message, in one place."""

from __future__ import annotations

import pytest

from service.domain_errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidQuery,
    LeaseNotHeld,
    NotFound,
)
from service.errors import from_domain, invalid_field, unprocessable


def test_not_found_names_one_id_or_many() -> None:
    assert NotFound("job", 7).message == "job 7 does not exist"
    assert NotFound("run", 3, 4).message == "runs 3, 4 do not exist"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("sweep", 2), 404, "not_found"),
        (Conflict("job 1 already ended"), 409, "conflict"),
        (LeaseNotHeld(5, "succeeded"), 409, "lease_not_held"),
        (Forbidden("run_closed", "run 1 is finished"), 403, "run_closed"),
        (InvalidQuery("by", "unknown parameter", "by: no run has it"), 422, "validation_error"),
    ],
)
def test_each_domain_error_maps_to_its_status_and_code(
    error: DomainError, status: int, code: str
) -> None:
    answer = from_domain(error)
    assert (answer.status_code, answer.code, answer.message) == (status, code, error.message)


def test_an_invalid_query_is_located_at_its_parameter() -> None:
    answer = from_domain(InvalidQuery("by", "unknown parameter", "by: no run has 'x'"))
    assert answer.detail == [
        {"loc": ["query", "by"], "msg": "unknown parameter", "type": "value_error"}
    ]


def test_every_hand_made_422_has_the_contract_shape() -> None:
    plain = unprocessable("bad", code="too_many_keys")
    assert (plain.status_code, plain.code, plain.detail) == (422, "too_many_keys", [])
    field = invalid_field("header", "Last-Event-ID", "not an event id", kind="int_type")
    assert field.message == "Last-Event-ID: not an event id"
    assert field.detail == [
        {"loc": ["header", "Last-Event-ID"], "msg": "not an event id", "type": "int_type"}
    ]
