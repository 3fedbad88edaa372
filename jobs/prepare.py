"""Ray job entrypoint for `mmrec prepare`: `ray job submit --working-dir . -- python jobs/prepare.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("prepare"))
