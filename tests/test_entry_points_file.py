"""momentum.toml: read into entry points, each malformed file refused with a message that
names the file, the entry point and the field; argv and environment of a child."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from momentum.contract import JobPublic
from momentum.entry_points import (
    EntryPointFileError,
    command_argv,
    find_entry_points,
    format_value,
    load_entry_points,
)
from momentum.worker_entry import child_environment, job_total

ISSUE_EXAMPLE = """
[entry_points.train]
command = ["python", "train.py"]          # argv; never run through a shell
total_param = "steps"
[entry_points.train.params]
momentum = { type = "float", default = 0.9, min = 0.0, max = 1.0 }
lr       = { type = "float", default = 0.01, min = 0.0, log = true }
seed     = { type = "int",   default = 0 }
steps    = { type = "int",   default = 1000, min = 1 }
arch     = { type = "str",   default = "mlp", choices = ["mlp", "cnn"] }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "momentum.toml"
    path.write_text(text)
    return path


def test_the_issues_example_loads_with_its_directory_and_a_stable_digest(tmp_path: Path) -> None:
    entry = load_entry_points(write(tmp_path, ISSUE_EXAMPLE))["train"]
    assert entry.definition.command == ["python", "train.py"]
    assert entry.definition.total_param == "steps"
    assert list(entry.definition.params) == ["momentum", "lr", "seed", "steps", "arch"]
    assert entry.directory == tmp_path.resolve()
    assert entry.digest == entry.definition.compute_digest()
    # The registration the service checks: its digest is the definition's.
    registration = entry.registration("w1")
    assert (registration.digest, registration.worker_id) == (entry.digest, "w1")
    assert entry.ref().model_dump() == {"name": "train", "digest": entry.digest}
    edited = load_entry_points(write(tmp_path, ISSUE_EXAMPLE.replace("0.9", "0.8")))["train"]
    assert edited.digest != entry.digest


def test_no_file_and_no_flag_means_no_entry_points(tmp_path: Path) -> None:
    assert find_entry_points(None, tmp_path) == {}
    write(tmp_path, ISSUE_EXAMPLE)
    assert list(find_entry_points(None, tmp_path)) == ["train"]
    other = tmp_path / "elsewhere.toml"
    other.write_text(ISSUE_EXAMPLE.replace("entry_points.train", "entry_points.fit"))
    assert list(find_entry_points(other, tmp_path)) == ["fit"]
    with pytest.raises(EntryPointFileError, match="missing.toml: cannot read it"):
        find_entry_points(tmp_path / "missing.toml", tmp_path)


BAD = {
    "bad TOML syntax": ('[entry_points.train\ncommand = ["x"]', "not valid TOML"),
    "unknown type": (
        '[entry_points.train]\ncommand = ["x"]\n[entry_points.train.params]\n'
        'a = { type = "complex" }',
        "entry point 'train', field params.a.type",
    ),
    "min > max": (
        '[entry_points.train]\ncommand = ["x"]\n[entry_points.train.params]\n'
        'a = { type = "float", min = 2.0, max = 1.0 }',
        "entry point 'train', field params.a: .*min 2.0 is greater than max 1.0",
    ),
    "default out of range": (
        '[entry_points.train]\ncommand = ["x"]\n[entry_points.train.params]\n'
        'a = { type = "float", default = 5.0, max = 1.0 }',
        "entry point 'train', field params.a: .*must be at most 1.0",
    ),
    "command not a list of strings": (
        '[entry_points.train]\ncommand = ["python", 3]',
        r"entry point 'train', field command\[1\]",
    ),
    "command a string": (
        '[entry_points.train]\ncommand = "python train.py"',
        "entry point 'train', field command",
    ),
    "total_param not an int param": (
        '[entry_points.train]\ncommand = ["x"]\ntotal_param = "lr"\n'
        '[entry_points.train.params]\nlr = { type = "float" }',
        "entry point 'train', field total_param: .*must name an int param",
    ),
    "unknown field": (
        '[entry_points.train]\ncommand = ["x"]\nshell = true',
        "entry point 'train', field shell: Extra inputs are not permitted",
    ),
    "bad name": ('[entry_points.".x"]\ncommand = ["x"]', "entry point '.x': the name must"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_malformed_file_names_the_file_the_entry_point_and_the_field(
    tmp_path: Path, case: str
) -> None:
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(EntryPointFileError) as raised:
        load_entry_points(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(expected, message), message


def test_values_are_written_as_json_spells_them() -> None:
    assert [format_value(v) for v in (True, False, 3, 0.9, 1e-05, "mlp")] == [
        "true",
        "false",
        "3",
        "0.9",
        "1e-05",
        "mlp",
    ]


def test_argv_appends_each_param_unless_the_command_names_it() -> None:
    params = {"momentum": 0.9, "seed": 1, "arch": "cnn", "amp": True}
    argv = command_argv(["python", "train.py", "--arch", "{arch}", "out-{seed}/{other}"], params)
    assert argv == [
        "python",
        "train.py",
        "--arch",
        "cnn",
        "out-1/{other}",
        "--momentum=0.9",
        "--amp=true",
    ]


def job(**fields: object) -> JobPublic:
    base = {
        "id": 7,
        "name": "job-7",
        "status": "running",
        "config": None,
        "entry_point": "train",
        "params": {"momentum": 0.9, "steps": 40},
        "framework": "torch",
        "device": "cpu",
        "attempts": 1,
        "max_attempts": 3,
        "run_id": 12,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    defaults = {name: None for name in JobPublic.model_fields if name not in base}
    defaults.update(cancel_requested=False, lease_lapses=0)
    return JobPublic.model_validate({**defaults, **base, **fields})


def test_the_child_gets_its_run_token_never_the_workers(tmp_path: Path) -> None:
    base = {"PATH": "/bin", "MOMENTUM_TOKEN": "worker-secret", "MLFLOW_TRACKING_TOKEN": "w"}
    env = child_environment(base, "http://svc:8000", job(), "run-token")
    assert env["MOMENTUM_TOKEN"] == env["MLFLOW_TRACKING_TOKEN"] == "run-token"
    assert (env["MOMENTUM_URL"], env["MLFLOW_TRACKING_URI"]) == ("http://svc:8000",) * 2
    assert (env["MOMENTUM_RUN_ID"], env["MLFLOW_RUN_ID"], env["MOMENTUM_JOB_ID"]) == (
        "12",
        "12",
        "7",
    )
    assert json.loads(env["MOMENTUM_PARAMS"]) == {"momentum": 0.9, "steps": 40}
    assert env["PATH"] == "/bin"
    without = child_environment(base, "http://svc:8000", job(), None)
    assert "MOMENTUM_TOKEN" not in without and "MLFLOW_TRACKING_TOKEN" not in without


def test_the_total_is_the_total_params_value(tmp_path: Path) -> None:
    entries = load_entry_points(write(tmp_path, ISSUE_EXAMPLE))
    assert job_total(job(), entries) == 40
    assert job_total(job(params={}), entries) == 0
    assert job_total(job(entry_point="other"), entries) == 0
