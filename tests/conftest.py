"""Shared test configuration.

Hypothesis runs derandomized (a fixed seed) with bounded examples so CI is
fast and reproducible; set HYPOTHESIS_PROFILE=thorough locally for more.
"""

import os
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def china():
    """scikit-learn's sample photo, (427, 640, 3) uint8."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")


@pytest.fixture(scope="session")
def small_photo(china):
    """A 40 x 60 crop of the sample photo: real colors, fast to fit."""
    return np.ascontiguousarray(china[200:240, 300:360])


@pytest.fixture
def joblib_on_dask():
    """``with joblib_on_dask(**cluster) as (client, tasks):`` runs joblib's
    work on a dask LocalCluster and records the tasks it ran."""
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    @contextmanager
    def on_cluster(**cluster):
        with (
            distributed.LocalCluster(dashboard_address=None, **cluster) as local,
            distributed.Client(local) as client,
            distributed.get_task_stream(client) as tasks,
            joblib.parallel_config(backend="dask"),
        ):
            yield client, tasks

    return on_cluster
