"""`build_report` on damaged summary.json files: a report or one `InputError` line, nothing else.

Random bytes, truncations of a real summary.json, random JSON and a real summary with values
replaced go into a copy of a tiny cross-validation. `RELUNET_FUZZ_EXAMPLES` (default 200) sets
how many inputs the fuzz test tries.
"""

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import crossval_self_pair_and_unet, write_pictures
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from relunet.errors import InputError
from relunet.reporting import figures
from relunet.reporting.page import build_report
from relunet.reporting.tables import read_summary, render_tables

EXAMPLES = int(os.environ.get("RELUNET_FUZZ_EXAMPLES", "200"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: values for one key of a method's entry: a number or null as most keys hold, any JSON, or an
#: object by fold as the `_by_fold` keys hold
VALUES = (
    st.none()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON
    | st.dictionaries(st.from_regex(r"-?[0-9]{1,3}", fullmatch=True), JSON, max_size=3)
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A tiny cross-validation folder (trained once) whose summary.json the tests overwrite."""
    root = tmp_path_factory.mktemp("fuzz")
    crossval_self_pair_and_unet(write_pictures(root / "pics", n_cases=6), root / "cv", [])
    shutil.copy(root / "cv" / "summary.json", root / "valid_summary.json")
    return root / "cv"


@pytest.fixture(scope="module")
def valid(folder) -> bytes:
    return (folder.parent / "valid_summary.json").read_bytes()


#: the keys of a method's entry that the report reads by name
KEYS = (
    "n_folds",
    "pearson_mean",
    "pearson_std",
    "pearson_by_fold",
    "hardware_by_fold",
    "failure_threshold_mean",
    "n_cases_mean",
    "pooled_failures",
    "train_seconds_mean",
)
#: calls as calls.json lists them, for the table of where folds ran
CALLS = [{"methods": "all", "fold": None, "hardware": "x86_64 CPU, 2 threads"}]


@st.composite
def mutated(draw, summary: dict) -> dict:
    """`summary` with a value changed or deleted in one or all methods, one to three times."""
    summary = copy.deepcopy(summary)
    names = sorted(summary)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(KEYS) | st.sampled_from(sorted(summary[names[0]])) | st.text(max_size=8))
        chosen = names if draw(st.booleans()) else [draw(st.sampled_from(names))]
        value, delete = draw(VALUES), draw(st.integers(0, 4)) == 0
        for name in chosen:
            summary[name][key] = value
            if delete:
                del summary[name][key]
    if draw(st.integers(0, 4)) == 0:
        summary[draw(st.sampled_from(names) | st.text(max_size=8))] = draw(VALUES)
    return summary


def damaged(data: st.DataObject, valid: bytes) -> bytes:
    """One damaged summary.json: random bytes, a truncation, random JSON or JSON shaped like one.

    (Changed values of a real summary are `mutated`'s, in the faster test of the tables.)
    """
    summary = json.loads(valid)
    methods = st.sampled_from(sorted(summary)) | st.text(max_size=8)
    shaped = st.dictionaries(methods, st.dictionaries(st.sampled_from(sorted(summary["unet"])), VALUES))
    return data.draw(
        st.one_of(
            st.binary(max_size=300),
            st.integers(0, len(valid)).map(lambda n: valid[:n]),
            JSON.map(lambda value: json.dumps(value).encode()),
            shaped.map(lambda value: json.dumps(value).encode()),
        )
    )


def report_or_input_error(folder: Path) -> None:
    """Build the report; an `InputError` is fine if it is one line that names a file of `folder`."""
    try:
        build_report(folder)
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith(str(folder)), str(err)
        event("InputError")
    else:
        event("report")


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(data=st.data())
def test_any_summary_json_gives_a_report_or_one_input_error(folder, valid, data):
    (folder / "summary.json").write_bytes(damaged(data, valid))
    report_or_input_error(folder)


@FUZZ
@given(data=st.data())
def test_any_changed_summary_gives_tables_or_one_input_error(folder, valid, data):
    """Faster than a whole report: what reads the summary's values, without the figures."""
    path = folder / "summary.json"
    path.write_text(json.dumps(data.draw(mutated(json.loads(valid)))))
    try:
        summary = read_summary(path)
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith(f"{path}: "), str(err)
        event("InputError")
        return
    render_tables(summary, "Task04_Hippocampus", 2, CALLS)
    assert set(figures.fold_labels(summary)) == set(summary)
    event("tables")


def test_the_valid_summary_gives_a_report(folder, valid):
    (folder / "summary.json").write_bytes(valid)
    assert build_report(folder).is_file()


def test_values_at_their_limits_still_give_a_report(folder, valid):
    """What `test_any_changed_summary_gives_tables_or_one_input_error` checks, with the figures."""
    summary = json.loads(valid)
    (folder / "summary.json").write_text(json.dumps({name: {"n_folds": 1} for name in summary}))
    assert build_report(folder).is_file()
    limits = {
        "n_folds": 2**63,
        "pearson_mean": None,
        "aurc_std": 1.7e308,
        "n_cases_mean": -1.7e308,
        "failure_threshold_mean": None,
        "pooled_failures": 2**80,
        "hardware_by_fold": {"0": "a | b\nc", "00": None},
    }
    (folder / "summary.json").write_text(json.dumps({name: s | limits for name, s in summary.items()}))
    assert "Dice below 0.7" in build_report(folder).read_text()


def unet(s: dict, **values) -> str:
    """summary.json with the U-Net's entry alone, `values` changed."""
    return json.dumps({"unet": s["unet"] | values})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda text, s: text[: text.index(":", len(text) // 2) + 1], "not valid JSON (Expecting value"),
        (lambda text, s: "", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (lambda text, s: b'{"unet": "\xff"}', "not valid JSON ('utf-8' codec can't decode byte 0xff"),
        (lambda text, s: "[" * 100_000, "not valid JSON (maximum recursion depth exceeded"),
        (
            lambda text, s: unet(s, pearson_mean=float("nan")),
            "not valid JSON (NaN is not a number JSON allows)",
        ),
        (lambda text, s: unet(s, aurc_mean=float("inf")), "not valid JSON (Infinity is not a number"),
        (lambda text, s: json.dumps(list(s.values())), "not a JSON object with an entry per method"),
        (lambda text, s: "{}", "not a JSON object with an entry per method"),
        (lambda text, s: json.dumps({"../unet": s["unet"]}), "'../unet' is not a method name"),
        (lambda text, s: json.dumps({"unet": [s["unet"]]}), "method unet: not a JSON object"),
        (
            lambda text, s: unet(s, n_folds=None),
            "method unet: n_folds is missing or not a whole number from 1",
        ),
        (lambda text, s: unet(s, n_folds=0), "method unet: n_folds is missing or not a whole number from 1"),
        (
            lambda text, s: unet(s, n_folds=True),
            "method unet: n_folds is missing or not a whole number from 1",
        ),
        (lambda text, s: unet(s, aurc_mean="0.1"), "method unet: 'aurc_mean' is not a number"),
        (lambda text, s: unet(s, aurc_mean=10**400), "method unet: 'aurc_mean' is not a number"),
        (lambda text, s: '{"unet": {"n_folds": 1, "aurc_mean": 1e999}}', "method unet: 'aurc_mean' is not a"),
        (
            lambda text, s: unet(s, pearson_by_fold={"zero": 0.5}),
            "method unet: pearson_by_fold has 'zero', not a fold number",
        ),
        (
            lambda text, s: unet(s, hardware_by_fold={"0": 7}),
            "method unet: hardware_by_fold has a wrong value for fold 0",
        ),
    ],
)
def test_damaged_summary_json_is_one_line_naming_it_and_the_fix(folder, valid, change, problem):
    path = folder / "summary.json"
    damage = change(valid.decode(), json.loads(valid))
    path.write_bytes(damage if isinstance(damage, bytes) else damage.encode())
    with pytest.raises(InputError) as caught:
        build_report(folder)
    message = str(caught.value)
    assert message.startswith(f"{path}: {problem}"), message
    assert message.endswith(f"rerun `relunet crossval` into {folder} with the same methods to rebuild it")
    assert "\n" not in message


def test_a_summary_naming_a_method_that_did_not_run_names_its_folder(folder, valid):
    summary = json.loads(valid)
    (folder / "summary.json").write_text(json.dumps(summary | {"ensemble_5": summary["unet"]}))
    with pytest.raises(InputError, match=f"^{folder}/methods/ensemble_5: no per_case.csv of a fold"):
        build_report(folder)
