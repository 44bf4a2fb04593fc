"""Threads of the compiled loops: how many, and that they never spin-wait."""

import os
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from skvq._engine import threads

# In a fresh interpreter: the OpenMP runtime skvq loads (the only one, as
# scikit-learn is not imported), and its settings as it prints them.
SHOW_OPENMP_SETTINGS = """
import ctypes, os, sys
import skvq._engine
from threadpoolctl import threadpool_info

assert "sklearn" not in sys.modules
(runtime,) = [i["filepath"] for i in threadpool_info() if i["internal_api"] == "openmp"]
library = ctypes.CDLL(runtime)
if not hasattr(library, "omp_display_env"):
    sys.exit(77)
sys.stderr.flush()
library.omp_display_env(1)
print(sorted(set(os.environ) & {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}))
"""


@pytest.mark.parametrize(
    ("user_setting", "spin_count"),
    [
        ({}, "1000"),  # libgomp's default would spin 300,000 times
        ({"OMP_WAIT_POLICY": "active"}, "30000000000"),
        ({"OMP_WAIT_POLICY": "passive"}, "0"),
        ({"GOMP_SPINCOUNT": "5000"}, "5000"),
    ],
)
def test_openmp_threads_wait_passively_unless_the_user_chose(user_setting, spin_count):
    env = {k: v for k, v in os.environ.items() if k not in threads._WAIT_SETTINGS}
    done = subprocess.run(
        [sys.executable, "-c", SHOW_OPENMP_SETTINGS],
        capture_output=True,
        text=True,
        env=env | user_setting,
        check=False,
    )
    if done.returncode == 77 or "GOMP_SPINCOUNT" not in done.stderr:
        pytest.skip("not libgomp, or it cannot display its settings")
    assert done.returncode == 0, done.stderr
    assert f"GOMP_SPINCOUNT = '{spin_count}'" in done.stderr
    # The setting was for the runtime alone: not left for child processes.
    assert done.stdout.strip() == str(sorted(user_setting))


def test_passive_waiting_restores_the_environment(monkeypatch):
    for name in threads._WAIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with threads.passive_waiting():
        assert os.environ["OMP_WAIT_POLICY"] == "passive"
        assert os.environ["GOMP_SPINCOUNT"] == "1000"
    assert not set(threads._WAIT_SETTINGS) & set(os.environ)
    monkeypatch.setenv("GOMP_SPINCOUNT", "5000")
    with threads.passive_waiting():
        assert "OMP_WAIT_POLICY" not in os.environ
        assert os.environ["GOMP_SPINCOUNT"] == "5000"


def test_threads_follow_the_work():
    with threadpool_limits(2):
        assert threads.for_work(19_999, 10_000) == 1
        assert threads.for_work(20_000, 10_000) == min(2, threads.available())
    assert threads.for_work(0, 0) == 1


def test_threadpool_limits_and_affinity_bound_the_threads(monkeypatch):
    with threadpool_limits(1):
        assert threads.available() == 1
        assert threads.for_work(10**9, 1) == 1
    monkeypatch.setattr(threads, "_cpus", lambda: 1)
    with threadpool_limits(8):
        assert threads.available() == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_the_cpus_are_those_this_process_may_run_on(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert threads._cpus() == 1
    monkeypatch.delattr(os, "sched_getaffinity")
    assert threads._cpus() == os.cpu_count()


@pytest.mark.parametrize("spare", [1, 2])
def test_kmeans_of_many_features_runs_on_the_spare_cpus(monkeypatch, spare):
    """scikit-learn's OpenMP pools run as many threads as CPUs are spare
    while skvq fits through KMeans (more than four features), BLAS pools
    one, and they get their limits back after."""
    import numpy as np
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    from skvq import VectorQuantizer

    seen = []
    fit = KMeans.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(
            {
                (pool["user_api"], pool["filepath"]): pool["num_threads"]
                for pool in threadpool_info()
            }
        )
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", recording_fit)
    monkeypatch.setattr(threads, "spare", lambda: spare)
    before = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}
    X = np.random.default_rng(0).normal(size=(500, 6))
    monkeypatch.setattr(threads, "KMEANS_WORK", 1000)
    VectorQuantizer(4, random_state=0).fit(X)
    assert len(seen) == 1
    assert {api: n for (api, _), n in seen[0].items()} == {"openmp": spare, "blas": 1}
    # Little work: one thread, whatever is spare.
    monkeypatch.setattr(threads, "KMEANS_WORK", 10**9)
    VectorQuantizer(4, random_state=0).fit(X)
    assert set(seen[1].values()) == {1}
    assert {
        pool["filepath"]: pool["num_threads"] for pool in threadpool_info()
    } == before


@pytest.mark.parametrize(
    ("loadavg", "cpus", "expected"),
    [
        ("0.50 0.40 0.30 1/80 123", 2, 2),  # only this thread runs: all
        ("2.10 1.90 1.50 2/80 123", 2, 1),  # one other: what is left
        ("3.90 3.00 2.00 5/90 123", 2, 1),  # more than the CPUs: one
        ("0.10 0.10 0.10 2/80 123", 8, 7),
    ],
)
def test_spare_cpus_are_those_no_other_thread_runs_on(
    monkeypatch, loadavg, cpus, expected
):
    read = threads._read

    def fake_read(path):
        return loadavg.encode() if path == "/proc/loadavg" else read(path)

    monkeypatch.setattr(threads, "_read", fake_read)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(threads, "available", lambda: cpus)
    assert threads.spare() == expected


@given(
    cpus=st.integers(1, 16),
    allowed=st.integers(1, 16),
    others=st.integers(0, 20),
    own=st.lists(st.booleans(), min_size=1, max_size=12),
)
@example(cpus=2, allowed=2, others=1, own=[True])  # one other process busy
@example(cpus=2, allowed=2, others=0, own=[True, True])  # a thread of ours
def test_spare_cpus_discount_this_process_own_running_threads(
    cpus, allowed, others, own
):
    # /proc/loadavg counts every runnable thread, this process's included
    # (the one asking runs); spare() takes its own back, and may skip
    # counting them when the machine is idle enough for the answer not to
    # depend on them.
    running_own = 1 + sum(own[1:])
    loadavg = f"0.1 0.1 0.1 {others + running_own}/300 123".encode()
    states = {str(task): state for task, state in enumerate(own)}

    def fake_read(path):
        assert path == "/proc/loadavg"
        return loadavg

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threads, "_read", fake_read)
        patch.setattr(threads, "_is_running", lambda task: task == "0" or states[task])
        patch.setattr(os, "listdir", lambda path: list(states))
        patch.setattr(os, "cpu_count", lambda: cpus)
        patch.setattr(threads, "available", lambda: min(allowed, cpus))
        assert threads.spare() == max(1, min(allowed, cpus, cpus - others))
