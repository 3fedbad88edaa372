"""Ray job entrypoint for `mmrec evaluate`: `ray job submit --working-dir . -- python jobs/evaluate.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("evaluate"))
