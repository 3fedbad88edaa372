"""Every test of test_app.py again, on a Ray whose Serve runs its high-throughput data plane (HAProxy ingress,
gRPC between replicas: serve.high_throughput, and what k8s/rayservice.yaml sets on a cluster's nodes)."""

import os

import pytest

from mmrec.serve.config import HIGH_THROUGHPUT_ENV
from tests.serve.test_app import *  # noqa: F401,F403  (the same tests, collected again in this module)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    # Read by every Ray process as it starts. A stopping ingress replica keeps answering for a draining period
    # (30 s by default) so that HAProxy notices before it goes; a test's teardown need not wait that long.
    env = {**HIGH_THROUGHPUT_ENV, "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_this_module_serves_through_haproxy(server):
    import psutil

    assert any("haproxy" in (p.info["name"] or "") for p in psutil.process_iter(["name"]))
