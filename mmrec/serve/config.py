"""Settings of `mmrec serve` (the mmrec side) and the Serve application's arguments (the `args:` of a Serve
config file, as `serve run` / `serve deploy` / KubeRay's RayService pass them to `build_app`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmrec.config_base import StrictConfig


# Ray Serve's high-throughput mode (Ray 2.56+): HAProxy instead of the Python HTTP proxy, forwarding to the
# ingress replicas' own HTTP servers, and gRPC between replicas. Read by every Ray process when it starts, so it
# belongs to the cluster's environment, not to one application.
HIGH_THROUGHPUT_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


class ServeConfig(StrictConfig):
    file: str = Field("configs/serve.yaml", description="Ray Serve config file: deployments, autoscaling, batching, "
                      "HTTP options (the same file `serve run` and `serve deploy` take)")
    model: str = Field("", description="registered model under models/ (empty = the one the train settings produce)")
    host: str = Field("", description="HTTP host (empty = the serve file's http_options, else 127.0.0.1)")
    port: int = Field(0, ge=0, le=65535, description="HTTP port (0 = the serve file's http_options, else 8000)")
    high_throughput: bool = Field(
        False, description="when mmrec serve starts its own local Ray: Ray Serve's high-throughput mode (HAProxy "
        "ingress and direct replica-to-replica calls), about 3x the requests/s and a third of the p99 at 8 clients "
        "on 2 cores, but HAProxy listens on every interface; on a cluster set HIGH_THROUGHPUT_ENV on every node "
        "(k8s/rayservice.yaml does)")
    mode: Literal["foreground", "once", "deploy"] = Field(
        "foreground", description="foreground: serve until interrupted (make serve); once: answer one request (a "
        "test playlist), print the top songs and shut down (make demo); deploy: deploy onto the cluster and return, "
        "the endpoint keeps serving after this process ends (a Ray job, jobs/pipeline.py on a cluster)")


class AppArgs(StrictConfig):
    """`args:` of the mmrec application in a Serve config file."""

    config: str = Field("", description="mmrec YAML whose artifact root, train settings and embed sources to use")
    artifact_root: str = Field("", description="overrides the mmrec config's artifact root (local path or s3://)")
    model: str = Field("", description="registered model name (empty = the one the mmrec config's train settings produce)")
    album_art_index: str = Field("", description="cover index JSON lines {album_uri, path} (empty = embed's source)")
    use_gpu: Literal["auto", "yes", "no"] = Field("auto", description="a GPU per model replica: auto = if the cluster has any")
    model_cpus: float = Field(0.5, gt=0, description="CPUs per model replica")
    ingress_cpus: float = Field(0.25, gt=0, description="CPUs per ingress replica")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="largest request body accepted (else 413)")
    model_retries: int = Field(3, ge=0, description="times the ingress retries a call whose model replica died")
