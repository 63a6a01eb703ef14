"""Every local device (`ntdyn.sharding`, conf `resources.devices`): the option's checks, and
training, evaluation and fixed points on 4 CPU devices against 1 (in a process of its own:
the device count is fixed when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ntdyn.parameters.check import parameter_problems
from ntdyn.resources import ResourceBudget
from ntdyn.sharding import Devices

HERE = Path(__file__).parent


@pytest.mark.parametrize("value", [0, -1, True, "some", [], [1, 1], [0, -2], 1.5, {"a": 1}])
def test_a_bad_devices_option_is_refused_naming_it(value):
    with pytest.raises(ValueError, match=r"resources\.devices = .*: must be 'all', a count"):
        ResourceBudget.from_conf({"devices": value})


@pytest.mark.parametrize(("value", "expected"), [(None, "all"), ("all", "all"), (2, 2),
                                                 ([1, 0], (1, 0))])  # fmt: skip
def test_good_devices_options(value, expected):
    assert ResourceBudget.from_conf({"devices": value}).devices == Devices(expected)


def test_the_parameter_check_names_a_bad_devices_option():
    problems = parameter_problems({"resources": {"devices": "two"}})
    assert len(problems) == 1 and problems[0].startswith("resources.devices = 'two': must be 'all'")
    assert parameter_problems({"resources": {"devices": [0, 1]}}) == []


def test_more_devices_than_there_are_is_refused_before_compute():
    # this process has one CPU device
    with pytest.raises(ValueError, match=r"resources\.devices = 3: only 1 local cpu device"):
        Devices(3).resolve()
    with pytest.raises(ValueError, match=r"resources\.devices = \[0, 2\]: no local device \[2\]"):
        Devices((0, 2)).resolve()


@pytest.fixture(scope="module")
def four_devices() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    done = subprocess.run([sys.executable, str(HERE / "sharding_run.py")], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line.removeprefix("REPORT "))


def test_training_on_four_devices_matches_one(four_devices):
    assert four_devices["n_devices"] == 4
    three, six = four_devices["train_3"], four_devices["train_6"]
    # 3 models (fewer than the devices) and 6 (not a multiple of 4): the padding dropped
    assert three["shape"] == [4, 3, 5] and six["shape"] == [4, 6, 5]  # (steps, models, terms)
    # Step 0 (the losses of the initial models) is bitwise that of one device. The updates
    # are not: XLA simplifies Adam's bias-corrected division differently when it compiles
    # the 4-device program (two divisions per leaf, where one device's has one by a
    # product), so the parameters differ in the last bit after the first step (README
    # "Several GPUs of one machine"). Bounded here at a few float32 ulps.
    assert three["step_0"] and six["step_0"], (three, six)
    assert three["params_diff"] <= 1e-6 and six["params_diff"] <= 1e-6, (three, six)
    assert three["history_diff"] <= 1e-6 and six["history_diff"] <= 1e-6, (three, six)
    # while training, the stacked state lived on all 4 devices (on 1 with one asked for)
    assert four_devices["train_devices_during"] == {"one": 1, "all": 4}


def test_evaluation_on_four_devices_gives_the_numbers_of_one(four_devices):
    got = four_devices["evaluate"]
    assert got["measures"] and got["means"] and got["trials"], got
    assert four_devices["evaluate_devices"] == 4


def test_fixed_points_on_four_devices_match_one(four_devices):
    got = four_devices["fixed_points"]
    # Every candidate's search is its own: the same iterations, the same points kept.
    assert got["candidate"] and got["n_iters"], got
    # Not always to the bit: XLA's CPU dot kernel (a YNNPACK fusion) rounds the last bit of
    # a row differently with the number of rows, i.e. with the candidates one device holds
    # (the optimised HLO is the same but for that size; README "Several GPUs of one
    # machine"). Measured: a few ulps (<= 6e-16 in h at H = 32, 250 candidates).
    assert got["h_ulps"] <= 64 and got["q_ulps"] <= 64 and got["eig_rel"] <= 1e-12, got
    assert four_devices["fixed_points_devices"] == 4
