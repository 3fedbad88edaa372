"""Ray job entrypoint for `mmrec tune`: `ray job submit --working-dir . -- python jobs/tune.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("tune"))
