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


def test_training_on_four_devices_gives_the_numbers_of_one(four_devices):
    assert four_devices["n_devices"] == 4
    three, six = four_devices["train_3"], four_devices["train_6"]
    # 3 models (fewer than the devices) and 6 (not a multiple of 4): the padding dropped
    assert three["shape"] == [4, 3, 5] and six["shape"] == [4, 6, 5]  # (steps, models, terms)
    # Every device runs the one-device program on its models (DevicePlan.on_each_device), so
    # the parameters and every step's losses are those of one device, bitwise. (One program
    # partitioned over the 4 devices differed in the last bit from the first update on: XLA's
    # SPMD clean-up merges Adam's per-leaf bias corrections before the algebraic simplifier,
    # which then rewrites the bias-corrected division differently.)
    for got in (three, six):
        assert got["params"] and got["history"], got
    # while training, the stacked state lived on all 4 devices (on 1 with one asked for)
    assert four_devices["train_devices_during"] == {"one": 1, "all": 4}


def test_evaluation_on_four_devices_gives_the_numbers_of_one(four_devices):
    got = four_devices["evaluate"]
    assert got["measures"] and got["means"] and got["trials"], got
    assert four_devices["evaluate_devices"] == 4


def test_fixed_points_on_four_devices_are_those_of_one(four_devices):
    # Each device searches its blocks of candidates with the one-device program: the same
    # iterations, points, Jacobians and eigenvalues, bitwise, with blocks on every device
    # (30 candidates in 4 blocks of 8, 250 in 4 of 63: the last block padded) or one
    # block (3 candidates: fewer than the devices). Before, the candidates themselves were
    # split, and 250 of 32 units differed in the last bits: XLA:CPU compiles the sum in
    # q = |F(h) - h|^2 / 2 differently for 63 rows per device than for 250 on one.
    for case, got in four_devices["fixed_points"].items():
        assert got["n_points"] >= 1, case
        for what in ("candidate", "n_iters", "h", "candidates_q", "jacobian", "eigenvalues"):
            assert got[what], (case, what, got)
    # 250 candidates in blocks of at most 64: 4 blocks of 63, one on each device
    assert four_devices["fixed_points_blocks"] == [[63, [k]] for k in range(4)]


def test_many_searches_spread_over_four_devices_give_the_numbers_of_one(four_devices):
    # 5 searches (3, 30, 12, 20 and 7 candidates; blocks of at most 16: 7 blocks) of two
    # models at two inputs, with groups, noise and eigenvectors among them
    got = four_devices["many_searches"]
    assert all(got["equal"].values()), got["equal"]
    assert min(got["n_points"]) >= 1 and got["eigenvectors"] == [False, False, True, False, False]
    # block k of all the searches ran on device k mod 4, each search's first block giving its
    # device; on one device every block ran on device 0
    blocks = [[3, [0]], [15, [1]], [15, [2]], [12, [3]], [10, [0]], [10, [1]], [7, [2]]]
    assert got["block_devices_all"] == blocks
    assert got["block_devices_one"] == [[rows, [0]] for rows, _ in blocks]
    assert got["search_devices_all"] == [0, 1, 3, 0, 2] and got["search_devices_one"] == [0] * 5
    # one compiled search per block shape and device: on 4 devices, only the (shape, device)
    # pairs off device 0 compiled anew (device 0's are the one-device run's programs)
    off_first = {(rows, d[0]) for rows, d in blocks if d != [0]}
    assert got["solve_programs_on_four"] == len(off_first) == 5
