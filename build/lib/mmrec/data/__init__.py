"""Prepare (`mmrec prepare`): MPD slices -> filtered item table and leave-one-out splits.

Reads MPD slices from a folder, glob or s3:// prefix (default: the demo corpus) and optionally an MPD
challenge_set.json. Writes <artifact_root>/data/: items.parquet, train/valid/test.parquet, challenge.parquet and
card.json, last. Filters, ids and splits are pure functions in split.py; parsing is in mpd.py; run.py is the
Ray Data wrapper. See docs/prepare.md.
"""
