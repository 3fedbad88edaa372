"""Ray job entrypoint for `mmrec pipeline`: `ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("pipeline"))
