"""Ray job entrypoint for `mmrec demo-data`: `ray job submit --working-dir . -- python jobs/demo_data.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("demo-data"))
