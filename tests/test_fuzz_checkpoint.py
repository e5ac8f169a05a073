"""Fuzz the checkpoint reader: random, truncated and bit-flipped files give a model or one InputError."""

import io
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relunet.config import ModelConfig, RunConfig
from relunet.errors import InputError
from relunet.nets import build_model
from relunet.training.checkpoint import load_model

EXAMPLES = int(os.environ.get("RELUNET_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def valid_checkpoint() -> bytes:
    config = RunConfig(model=ModelConfig(features=(4, 4, 4, 4, 4, 4)))
    state = {"model": build_model(config.model).state_dict(), "config": config.to_dict(), "epoch": 1}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


VALID = valid_checkpoint()


def loads_or_refuses(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_model(path)
    except InputError as err:
        assert "\n" not in str(err) and str(path) in str(err)


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes(tmp_path, data):
    loads_or_refuses(tmp_path / "checkpoint.pt", data)


@SETTINGS
@given(
    cut=st.integers(0, len(VALID)),
    flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), max_size=4),
)
def test_truncated_and_flipped(tmp_path, cut, flips):
    data = bytearray(VALID)
    for where, mask in flips:
        data[where] ^= mask
    loads_or_refuses(tmp_path / "checkpoint.pt", bytes(data[:cut] if cut < len(VALID) else data))


@pytest.mark.parametrize(
    "state",
    [
        [1, 2, 3],
        {"model": {}, "config": {}, "epoch": 1},
        {"model": {"x": torch.zeros(2)}, "config": RunConfig().to_dict(), "epoch": 1},
        {"model": {}, "config": {"model": {"kind": 3, "nope": 1}}, "epoch": 1},
        {"model": {}, "config": RunConfig().to_dict(), "epoch": "one"},
    ],
)
def test_valid_torch_files_with_wrong_contents(tmp_path, state):
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match="damaged checkpoint"):
        load_model(path)
