"""The entry-point contract (issue 17): declared params check values, fill defaults and
name what is wrong; a definition's digest names it exactly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from momentum.contract.entry_points import (
    EntryPointDefinition,
    EntryPointRegistration,
    ParamErrors,
    ParamSpec,
)
from tests.entry_point_support import TRAIN


def definition(**changes: Any) -> EntryPointDefinition:
    return EntryPointDefinition.model_validate({**TRAIN, **changes})


def test_resolve_fills_defaults_and_reads_an_int_as_a_float() -> None:
    assert definition().resolve({"momentum": 1, "arch": "cnn"}) == {
        "momentum": 1.0,
        "lr": 0.01,
        "seed": 0,
        "steps": 1000,
        "arch": "cnn",
    }


def test_resolve_names_every_bad_param_with_what_it_takes() -> None:
    with pytest.raises(ParamErrors) as raised:
        definition().resolve({"momentum": 1.5, "arch": "rnn", "seed": "1", "depth": 3})
    errors = raised.value.errors
    assert set(errors) == {"momentum", "arch", "seed", "depth"}
    assert "at most 1.0" in errors["momentum"]
    assert "['mlp', 'cnn']" in errors["arch"]
    assert errors["seed"] == "must be an int, got '1'"
    assert "unknown param" in errors["depth"] and "momentum" in errors["depth"]


def test_a_param_without_a_default_is_required() -> None:
    needs_data = definition(params={**TRAIN["params"], "data": {"type": "str"}})
    with pytest.raises(ParamErrors) as raised:
        needs_data.resolve({})
    assert raised.value.errors == {"data": "required: it has no default"}
    assert needs_data.resolve({"data": "/tmp/x"})["data"] == "/tmp/x"


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "float", "min": 1.0, "max": 0.0},
        {"type": "str", "min": 0},
        {"type": "int", "default": 1.5},
        {"type": "float", "default": 2.0, "max": 1.0},
        {"type": "bool", "default": 1},
        {"type": "str", "choices": ["a", 1]},
        {"type": "complex"},
        {"type": "float", "step": 0.1},
    ],
)
def test_an_inconsistent_param_is_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ParamSpec.model_validate(spec)


def test_total_param_must_name_an_int_param() -> None:
    with pytest.raises(ValidationError, match="total_param"):
        definition(total_param="lr")


def test_the_digest_follows_the_definition_and_nothing_else() -> None:
    same = EntryPointDefinition.model_validate(dict(reversed(list(TRAIN.items()))))
    assert definition().compute_digest() == same.compute_digest()
    assert len(definition().compute_digest()) == 64
    edited = definition(command=["python", "train2.py"])
    assert edited.compute_digest() != definition().compute_digest()


def test_a_registration_must_carry_its_definitions_digest() -> None:
    digest = definition().compute_digest()
    registered = EntryPointRegistration.model_validate({**TRAIN, "digest": digest})
    assert registered.definition() == definition()
    with pytest.raises(ValidationError, match="digest"):
        EntryPointRegistration.model_validate({**TRAIN, "digest": "0" * 64})
