"""Hand-written MPD slices for tests: tiny, with answers known by reading them."""

from __future__ import annotations

import json
from pathlib import Path


def track(song: str, pos: int, artist: str = "a0", album: str = "b0") -> dict:
    return {
        "pos": pos,
        "artist_name": f"Artist {artist}",
        "track_uri": f"spotify:track:{song}",
        "artist_uri": f"spotify:artist:{artist}",
        "track_name": f"Song {song}",
        "album_uri": f"spotify:album:{album}",
        "duration_ms": 200000 + pos,
        "album_name": f"Album {album}",
    }


def playlist(pid: int, songs: list[str], **extra) -> dict:
    tracks = [track(s, i) for i, s in enumerate(songs)]
    return {
        "name": f"playlist {pid}",
        "collaborative": "false",
        "pid": pid,
        "modified_at": 1493424000,
        "num_tracks": len(tracks),
        "num_albums": 1,
        "num_followers": 1,
        "tracks": tracks,
        "num_edits": 2,
        "duration_ms": sum(t["duration_ms"] for t in tracks),
        "num_artists": 1,
        **extra,
    }


def slice_document(first: int, last: int, playlists: list[dict]) -> dict:
    return {"info": {"generated_on": "2017-12-03 08:41:42.057563", "slice": f"{first}-{last}", "version": "v1"},
            "playlists": playlists}


def write_slice(folder: Path, first: int, last: int, playlists: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mpd.slice.{first}-{last}.json"
    path.write_text(json.dumps(slice_document(first, last, playlists), indent=4))
    return path
