"""Settings of the demo corpus generator (`mmrec demo-data`)."""

from __future__ import annotations

from pydantic import Field

from mmrec.config_base import StrictConfig


class DemoDataConfig(StrictConfig):
    output: str = Field(
        "", description="where the corpus goes (local path or s3:// URI); empty = <artifact_root>/demo-corpus"
    )
    playlists: int = Field(4000, gt=0, description="number of playlists")
    songs: int = Field(150000, ge=100, description="size of the song catalogue playlists draw from (most never appear)")
    genres: int = Field(16, ge=2, le=200, description="number of hidden genres tying songs together")
    scenes_per_genre: int = Field(
        8, ge=1, le=50, description="scenes (latent tastes) per genre: artists belong to one, playlists mostly stay in one"
    )
    scene_leak: float = Field(
        0.15, ge=0, le=1, description="chance a song comes from another scene of its position's genre"
    )
    misleading_content: float = Field(
        0.15, ge=0, le=1, description="share of artists whose content (audio, lyrics, art, bio) reads as another genre"
    )
    seed: int = Field(0, ge=0, description="everything is a deterministic function of this seed")
    slice_size: int = Field(1000, gt=0, description="playlists per mpd.slice.START-END.json file (MPD: 1000)")
    median_tracks: int = Field(50, ge=5, le=250, description="median playlist length (MPD: about 50)")
    popularity_skew: float = Field(
        1.8, gt=0, description="lognormal sigma of artist popularity: larger = longer tail"
    )
    second_scene_share: float = Field(
        0.5, ge=0, le=1, description="share of playlists that drift from their first scene towards a second"
    )
    genre_noise: float = Field(0.1, ge=0, le=1, description="chance a song ignores the playlist's scenes and genres")
    same_artist: float = Field(
        0.2, ge=0, le=1, description="chance the next song is by the same artist as the previous one"
    )
    lyrics_coverage: float = Field(0.90, ge=0, le=1, description="share of songs with lyrics")
    bio_coverage: float = Field(0.93, ge=0, le=1, description="share of artists with a biography")
    art_coverage: float = Field(0.92, ge=0, le=1, description="share of albums with a cover image file")
    corrupt_art: float = Field(0.02, ge=0, le=1, description="share of cover files that are corrupt or empty")
    content_noise: float = Field(
        1.0, ge=0, description="scale of the per-song noise around its genre in every modality (0 = none)"
    )
    challenge_playlists: int = Field(
        1000, ge=0, description="playlists in challenge_set.json, split over the MPD challenge's 10 categories"
    )
    overwrite: bool = Field(False, description="regenerate even when a complete corpus with these settings exists")
