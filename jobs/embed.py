"""Ray job entrypoint for `mmrec embed`: `ray job submit --working-dir . -- python jobs/embed.py --config configs/demo.yaml`."""

import sys

from _entry import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("embed"))
