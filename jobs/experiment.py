"""Ray job entrypoint for `mmrec experiment`: `ray job submit --working-dir . -- python jobs/experiment.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("experiment"))
