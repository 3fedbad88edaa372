"""The few facts every stage's Ray wrapper needs: connect once, and whether the cluster has GPUs."""

from __future__ import annotations

import os


def init_ray() -> None:
    """Join the cluster this process belongs to (RAY_ADDRESS, a `ray job submit` driver, a running local
    cluster) or start a local one. Token authentication stays as Ray sets it (on for new local clusters)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=True)


def cluster_gpus() -> int:
    """GPUs in the cluster. Ask for GPUs only when this is > 0: a GPU request on a CPU-only cluster waits forever."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def train_storage(root_uri: str, *parts: str):
    """(storage_path, storage_filesystem) for Ray Train's RunConfig under the artifact root: a local folder, or
    bucket/prefix with the S3 filesystem the artifact root uses (pyarrow ignores AWS_ENDPOINT_URL itself)."""
    from mmrec import artifacts

    location = artifacts.resolve(root_uri).join(*parts)
    return (location.path, location.fs) if location.is_s3 else (location.path, None)
