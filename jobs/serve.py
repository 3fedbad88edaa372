"""Ray job entrypoint for `mmrec serve`: `ray job submit --working-dir . -- python jobs/serve.py --config configs/demo.yaml`.

With --serve.mode=deploy the job deploys the endpoint, checks it with one request and ends; the endpoint keeps
serving on the cluster (as after `serve deploy configs/serve.yaml`, or with KubeRay's RayService). The default
mode serves until the job is stopped; --serve.mode=once answers one request and shuts the endpoint down.
"""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("serve"))
