"""Settings of `mmrec prepare`: which slices to read, the filters, the repeat policy and bad-input handling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmrec.config_base import StrictConfig

# The paper's corpus variants, by their minimum number of plays per song.
PRESETS: dict[str, int] = {"small": 1, "freq": 3, "large": 100}


class PrepareConfig(StrictConfig):
    input: str = Field(
        "",
        description="MPD slices: a folder, a glob or an s3:// prefix (a folder holding data/ works too); "
        "empty = the demo corpus under the artifact root",
    )
    preset: Literal["small", "freq", "large"] = Field(
        "freq", description="the paper's variants: small = no song filter, freq = >= 3 plays, large = >= 100 plays"
    )
    min_song_count: int | None = Field(
        None, ge=1, description="minimum plays per song; overrides the preset's threshold when set"
    )
    min_playlist_length: int = Field(
        3, ge=3, description="minimum songs per playlist after filtering (leave-one-out needs train, valid, test)"
    )
    repeats: Literal["drop", "keep"] = Field(
        "drop", description="in-playlist repeats: drop (keep the first occurrence) or keep"
    )
    count_on: Literal["all", "train"] = Field(
        "all",
        description="count song plays over whole playlists (the paper's definition) or training histories only "
        "(no held-out song counts towards its own filter)",
    )
    fixed_point: bool = Field(
        True, description="repeat the song and playlist filters until neither removes anything"
    )
    on_bad_record: Literal["raise", "skip"] = Field(
        "raise", description="bad input: stop with an error naming file, pid and field, or skip it and count it"
    )
    challenge_set: str = Field(
        "", description="optional challenge_set.json (local or s3://) to turn into data/challenge.parquet"
    )

    @property
    def song_threshold(self) -> int:
        return self.min_song_count if self.min_song_count is not None else PRESETS[self.preset]

