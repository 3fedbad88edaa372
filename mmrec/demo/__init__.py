"""The demo corpus (`mmrec demo-data`): the MPD format and the four modality sources, from a hidden genre model.

Reads nothing. Writes <artifact_root>/demo-corpus/ (or demo_data.output): data/mpd.slice.*.json,
challenge_set.json, audio_features.{csv,jsonl}, lyrics.jsonl, album_art/, artist_bios.jsonl, hidden/ (for checks
only) and manifest.json, last. The model is written down in docs/demo-corpus.md.
"""
