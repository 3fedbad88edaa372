"""Ray wrapper of `mmrec embed`: one vector per song per modality, missing ones filled, reduced and fused.

Reads <artifact_root>/data/items.parquet and the modality sources (default: the demo corpus's). Writes under
<artifact_root>/embeddings/: <modality>.parquet (track_uri, item_idx or null, vector, present), fused.parquet,
card.json (last) and plots/ (VAE loss curves, cover reconstructions, a 2-D map of the fused vectors).

Texts go through a Ray Data actor pool (the model loaded once per actor, on a GPU when the cluster has one);
covers are decoded by Ray Data tasks; the two VAEs train in this process or on one Ray Train worker (a GPU
when the cluster has one), by `embed.vae_trainer`.
"""

from __future__ import annotations

import io
import logging
import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import ray
import torch

from mmrec import artifacts, layout
from mmrec.artifacts import Location
from mmrec.config import MMRecConfig
from mmrec.embed.audio import SCALED_DIM, AudioScaler, audio_keys, check_audio
from mmrec.embed.config import EmbedConfig
from mmrec.embed.fuse import fuse_songs
from mmrec.embed.plots import genre_map, loss_plot, reconstruction_grid
from mmrec.embed.images import decode_cover, to_channels_first
from mmrec.embed.text import (
    SentenceEmbedder,
    average_word_vectors,
    clean_lyrics,
    drop_common_tokens,
    read_word_vectors,
)
from mmrec.embed.vae import AlbumArtVAE, AudioVAE, embed_with_vae, train_vae
from mmrec.ray_runtime import cluster_gpus, init_ray, train_storage

log = logging.getLogger("mmrec.embed")


def embeddings_location(config: MMRecConfig) -> Location:
    return layout.embeddings_dir(config.artifact_root)


def source(config: MMRecConfig, name: str) -> Location:
    """A modality source (embed.audio_features, .lyrics, .album_art_index, .artist_bios), or the demo's."""
    return layout.modality_source(config.artifact_root, name, getattr(config.embed, name), config.demo_data.output)


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.embed
    started = time.time()
    out = embeddings_location(config)
    if out.join("card.json").exists():
        out.fs.delete_file(out.join("card.json").path)  # incomplete until the new card lands
    items = layout.read_items(config.artifact_root)
    init_ray()
    problems: Counter = Counter()
    wanted = set(items["track_uri"].to_pylist()) if cfg.songs == "items" else None
    tables: dict[str, tuple[list[str], np.ndarray]] = {}  # modality -> (track URIs, vectors)
    notes: dict[str, dict] = {}

    if "audio" in cfg.modalities:
        tables["audio"], notes["audio"] = _audio(config, source(config, "audio_features"), out, problems, wanted)
    if "lyrics" in cfg.modalities:
        tables["lyrics"], notes["lyrics"] = _lyrics(cfg, source(config, "lyrics"), problems, wanted)
    if "artist_bio" in cfg.modalities:
        tables["artist_bio"], notes["artist_bio"] = _bios(cfg, source(config, "artist_bios"), items, problems)
    if "album_art" in cfg.modalities:
        tables["album_art"], notes["album_art"] = _album_art(config, source(config, "album_art_index"), items, out,
                                                             problems)

    # The song universe: every prepared item, and every song a source describes (cold songs included).
    songs = fuse_songs(items["track_uri"].to_pylist(), items["item_idx"].to_pylist(), tables, cfg.fill, cfg.dim,
                       cfg.fused_dim, cfg.seed)
    item_idx = pa.array(songs.item_idx, pa.int32())
    for name in tables:
        _write_vectors(out.join(f"{name}.parquet"), songs.uris, item_idx, songs.reduced[name], songs.present[name])
    _write_vectors(out.join("fused.parquet"), songs.uris, item_idx, songs.fused, songs.any_present)
    plots = {"audio_vae_loss": out.join("plots", "audio_vae_loss.png").uri}
    genres = _hidden_genres(config)
    if genres:
        map_uri = genre_map(songs.uris, songs.fused, genres, out.join("plots", "fused_genre_map.png"))
        plots.update({"genre_map": map_uri} if map_uri else {})

    card = artifacts.card(
        modalities={name: {**notes[name], **songs.modality_notes[name]} for name in tables},
        fused={"dim": int(songs.fused.shape[1]), "order": list(tables), "variance_kept": round(songs.fused_variance, 4)},
        songs=len(songs.uris),
        items=items.num_rows,
        cold_songs=int(sum(i is None for i in songs.item_idx)),
        fill=cfg.fill,
        problems=dict(sorted(problems.items())),
        plots=plots,
        seconds=round(time.time() - started, 1),
    )
    artifacts.write_json(out.join("card.json"), card)
    log.info("embeddings for %d songs (%d items) in %.0f s", len(songs.uris), items.num_rows, card["seconds"])
    return {**{n: out.join(f"{n}.parquet").uri for n in tables}, "fused": out.join("fused.parquet").uri,
            "card": out.join("card.json").uri}


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    card = artifacts.read_json(embeddings_location(config).join("card.json"))
    coverage = ", ".join(f"{n} {m['coverage_items']:.0%}" for n, m in card["modalities"].items())
    return [("songs", f"{card['songs']:,} ({card['cold_songs']:,} cold)"), ("coverage", coverage),
            ("fused", f"{card['fused']['dim']} dims from {', '.join(card['fused']['order'])}")]


# --- modalities --------------------------------------------------------------------------------------------


def _read_records(loc: Location, required: tuple[str, ...] = ()) -> pa.Table:
    """A table from .csv, .jsonl/.json (JSON lines) or .parquet with the `required` columns, named in errors."""
    data = artifacts.read_bytes(loc)
    try:
        if loc.name.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(data))
        elif loc.name.endswith((".jsonl", ".json")):
            table = pajson.read_json(io.BytesIO(data))
        else:
            table = pacsv.read_csv(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise artifacts.ArtifactError(f"{loc.uri}: unreadable ({err})") from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise artifacts.ArtifactError(f"{loc.uri}: missing column(s) {', '.join(missing)}")
    return table


def _first_per_key(keys: list[str], problems: Counter, reason: str) -> np.ndarray:
    """Indices of the first row of each non-empty key; duplicates and empty keys counted."""
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if not k:
            problems[f"{reason}_missing_key"] += 1
        elif k in seen:
            problems[f"{reason}_duplicate_key"] += 1
        else:
            seen[k] = i
    return np.fromiter(seen.values(), dtype=np.int64, count=len(seen))


def _audio(config: MMRecConfig, loc: Location, out: Location, problems: Counter, wanted: set | None):
    cfg = config.embed
    table = _read_records(loc)
    keys = audio_keys(table, loc.uri)
    values, valid, bad = check_audio(table, loc.uri)
    problems.update(bad)
    rows = _first_per_key(keys, problems, "audio")
    rows = rows[valid[rows]]
    if wanted is not None:
        rows = rows[[keys[i] in wanted for i in rows]] if len(rows) else rows
    if len(rows) < 2:
        raise artifacts.ArtifactError(f"{loc.uri}: fewer than 2 songs with valid audio features")
    scaler = AudioScaler.fit(values[rows])
    data = scaler.transform(values[rows])
    torch.manual_seed(cfg.seed)  # the initial weights too, so a rerun gives the same vectors
    model = AudioVAE(SCALED_DIM, latent_dim=cfg.audio_latent)
    history, trainer = _fit_vae(config, "audio", model, data, cfg.audio_epochs, 256, 3e-3, cfg.audio_beta)
    loss_plot(history, out.join("plots", "audio_vae_loss.png"), "audio VAE")
    vectors = embed_with_vae(model, data)
    return ([keys[i] for i in rows], vectors), {"source": loc.uri, "model": "AudioVAE", "songs": len(rows),
                                               "final_loss": round(history[-1]["loss"], 4), "trainer": trainer}


def _lyrics(cfg: EmbedConfig, loc: Location, problems: Counter, wanted: set | None):
    table = _read_records(loc, required=("track_uri", "lyrics"))
    keys = [k or "" for k in table["track_uri"].to_pylist()]
    texts = table["lyrics"].to_pylist()
    rows = _first_per_key(keys, problems, "lyrics")
    if wanted is not None:
        rows = rows[[keys[i] in wanted for i in rows]] if len(rows) else rows
    documents = [clean_lyrics(texts[i]) if isinstance(texts[i], str) else [] for i in rows]
    documents = drop_common_tokens(documents, cfg.lyrics_max_document_share)
    usable = np.array([len(d) > 0 for d in documents], dtype=bool)
    problems["lyrics_empty"] += int((~usable).sum())
    keys = [keys[i] for i, ok in zip(rows, usable) if ok]
    documents = [d for d, ok in zip(documents, usable) if ok]
    if cfg.lyrics_encoder == "word_vectors":
        word_vectors = artifacts.resolve(cfg.word_vectors)
        words = read_word_vectors(artifacts.read_bytes(word_vectors).decode().splitlines(), word_vectors.uri)
        vectors, present = average_word_vectors(documents, words, len(next(iter(words.values()))))
        keys = [k for k, p in zip(keys, present) if p]
        return (keys, vectors[present]), {"source": loc.uri, "model": cfg.word_vectors, "songs": len(keys)}
    vectors = _embed_texts(cfg, keys, [" ".join(d) for d in documents])
    return (keys, vectors), {"source": loc.uri, "model": cfg.text_model, "songs": len(keys)}


def _bios(cfg: EmbedConfig, loc: Location, items: pa.Table, problems: Counter):
    table = _read_records(loc, required=("artist_uri", "bio"))
    artists = [a or "" for a in table["artist_uri"].to_pylist()]
    bios = table["bio"].to_pylist()
    rows = _first_per_key(artists, problems, "bio")
    songs_of: dict[str, list[str]] = {}
    for uri, artist in zip(items["track_uri"].to_pylist(), items["artist_uri"].to_pylist()):
        songs_of.setdefault(artist, []).append(uri)
    keep = [i for i in rows if isinstance(bios[i], str) and bios[i].strip() and artists[i] in songs_of]
    problems["bio_artist_not_in_items"] += sum(1 for i in rows if artists[i] not in songs_of)
    problems["bio_empty"] += sum(1 for i in rows if artists[i] in songs_of and not (isinstance(bios[i], str) and bios[i].strip()))
    vectors = _embed_texts(cfg, [artists[i] for i in keep], [bios[i] for i in keep])
    # one vector per artist, broadcast to the artist's songs
    song_keys, song_rows = [], []
    for row, i in enumerate(keep):
        for uri in songs_of[artists[i]]:
            song_keys.append(uri)
            song_rows.append(row)
    return (song_keys, vectors[np.array(song_rows, dtype=np.int64)] if song_rows else vectors[:0]), {
        "source": loc.uri, "model": cfg.text_model, "artists": len(keep)}


def _embed_texts(cfg: EmbedConfig, keys: list[str], texts: list[str]) -> np.ndarray:
    """Texts through a Ray Data actor pool of sentence-transformers (GPU when the cluster has one)."""
    if not texts:
        return np.zeros((0, 1), np.float32)
    gpus = cluster_gpus() if cfg.use_gpu == "auto" else (1 if cfg.use_gpu == "yes" else 0)
    texts = [" ".join(t.split()[: cfg.max_text_words]) for t in texts]
    dataset = ray.data.from_items([{"key": k, "text": t} for k, t in zip(keys, texts)],
                                  override_num_blocks=max(1, min(len(texts) // cfg.batch_size, 64)))
    embedded = dataset.map_batches(
        SentenceEmbedder,
        fn_constructor_kwargs={"model": cfg.text_model, "device": "cuda" if gpus else "cpu"},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.actors),
        batch_size=cfg.batch_size,
        batch_format="numpy",
        num_gpus=1 if gpus else 0,
    )
    order = {k: i for i, k in enumerate(keys)}
    vectors = None
    for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
        if vectors is None:
            vectors = np.zeros((len(keys), batch["vector"].shape[1]), np.float32)
        vectors[[order[k] for k in batch["key"]]] = batch["vector"]
    return vectors


def _decode_covers(batch: dict, fs_uri: str) -> dict:
    folder = artifacts.resolve(fs_uri)
    images, reasons = [], []
    for path in batch["path"]:
        try:
            data = artifacts.read_bytes(folder.join(str(path)))
        except artifacts.ArtifactError:
            images.append(np.zeros((128, 128, 3), np.float32))
            reasons.append("missing_file")
            continue
        image, reason = decode_cover(data)
        images.append(image if image is not None else np.zeros((128, 128, 3), np.float32))
        reasons.append(reason)
    return {"album_uri": batch["album_uri"], "image": np.stack(images), "reason": np.array(reasons)}


def _embed_covers(batch: dict, fs_uri: str, weights: dict, latent: int, width: int, export: str) -> dict:
    """Decode a batch of covers and encode them with the trained VAE where they are read: only the vectors
    (latent floats per album, not 196 KB of pixels) leave the task."""
    decoded = _decode_covers(batch, fs_uri)
    model = AlbumArtVAE(latent_dim=latent, width=width)
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(to_channels_first(decoded["image"])))
    vectors = torch.cat([mu, (0.5 * logvar).exp()], dim=1) if export == "mean_sigma" else mu
    return {"album_uri": decoded["album_uri"], "vector": vectors.numpy().astype(np.float32),
            "reason": decoded["reason"]}


def _album_art(config: MMRecConfig, loc: Location, items: pa.Table, out: Location, problems: Counter):
    cfg = config.embed
    table = _read_records(loc, required=("album_uri", "path"))
    albums = [a or "" for a in table["album_uri"].to_pylist()]
    rows = _first_per_key(albums, problems, "art")
    songs_of: dict[str, list[str]] = {}
    for uri, album in zip(items["track_uri"].to_pylist(), items["album_uri"].to_pylist()):
        songs_of.setdefault(album, []).append(uri)
    rows = [i for i in rows if albums[i] in songs_of]
    paths = table["path"].to_pylist()
    folder = loc.uri.rsplit("/", 1)[0]
    records = [{"album_uri": albums[i], "path": paths[i]} for i in rows]

    # Only the training sample is decoded into this process (art_train_sample x 196 KB); every cover is then
    # decoded and encoded in Ray Data tasks and only its vector comes back (the full MPD has 735k albums: 144 GB
    # of pixels as float32, 188 MB of 64-dim vectors).
    order = np.random.default_rng(cfg.seed).permutation(len(records))
    candidates = [records[i] for i in order[: int(cfg.art_train_sample * 1.25) + 8]]  # some covers are unreadable
    sample = []
    for batch in _blocks(candidates).map_batches(_decode_covers, batch_size=256, batch_format="numpy",
                                                 fn_kwargs={"fs_uri": folder}).iter_batches(batch_size=None,
                                                                                            batch_format="numpy"):
        sample.append(batch["image"][batch["reason"] == "ok"])
    sample = np.concatenate(sample)[: cfg.art_train_sample] if sample else np.zeros((0, 128, 128, 3), np.float32)
    if len(sample) < 2:
        raise artifacts.ArtifactError(f"{loc.uri}: fewer than 2 readable covers")
    sample = to_channels_first(sample)
    torch.manual_seed(cfg.seed)
    model = AlbumArtVAE(latent_dim=cfg.art_latent, width=cfg.art_width)
    beta = 0.0 if cfg.art_model == "autoencoder" else cfg.art_beta
    history, trainer = _fit_vae(config, "album_art", model, sample, cfg.art_epochs, 64, 1e-3, beta)
    loss_plot(history, out.join("plots", "album_art_vae_loss.png"), "album-art VAE")
    reconstruction_grid(model, sample[:8], out.join("plots", "album_art_reconstructions.png"))

    weights = {k: v.cpu() for k, v in model.state_dict().items()}
    keys, vectors = [], []
    for batch in _blocks(records).map_batches(
            _embed_covers, batch_size=256, batch_format="numpy",
            fn_kwargs={"fs_uri": folder, "weights": weights, "latent": cfg.art_latent, "width": cfg.art_width,
                       "export": cfg.art_export}).iter_batches(batch_size=None, batch_format="numpy"):
        ok = batch["reason"] == "ok"
        problems.update(Counter(f"art_{r}" for r in batch["reason"][~ok]))
        keys.extend(batch["album_uri"][ok].tolist())
        vectors.append(batch["vector"][ok])
    vectors = np.concatenate(vectors)
    song_keys, song_rows = [], []
    for row, album in enumerate(keys):
        for uri in songs_of[album]:
            song_keys.append(uri)
            song_rows.append(row)
    return (song_keys, vectors[np.array(song_rows, dtype=np.int64)]), {
        "source": loc.uri, "model": f"AlbumArtVAE ({cfg.art_model}, export {cfg.art_export})", "albums": len(keys),
        "trained_on": int(len(sample)), "final_loss": round(history[-1]["loss"], 4), "trainer": trainer}


def _blocks(records: list[dict]):
    """Cover records as a Ray Dataset in blocks of about 256 (at most 64 blocks)."""
    return ray.data.from_items(records, override_num_blocks=max(1, min(len(records) // 256, 64)))


# --- VAE training: in this process, or on one Ray Train worker ------------------------------------------------

def _fit_vae(config: MMRecConfig, name: str, model, data: np.ndarray, epochs: int, batch_size: int,
             learning_rate: float, beta: float) -> tuple[list[dict], str]:
    """Train `model` in place; returns (per-epoch losses, where it trained)."""
    cfg = config.embed
    gpus = cluster_gpus() if cfg.use_gpu != "no" else 0
    if cfg.vae_trainer == "in_process" or (cfg.vae_trainer == "auto" and not gpus):
        history = train_vae(model, data, epochs, batch_size, learning_rate, beta, cfg.seed,
                            log=lambda m: log.info("%s VAE %s", name, m))
        return history, "in_process"

    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from safetensors.torch import load_file

    storage_path, storage_filesystem = train_storage(config.artifact_root, "runs")
    run_name = f"embed-{name}-vae-{time.strftime('%Y%m%d-%H%M%S')}"
    trainer = TorchTrainer(
        _vae_worker,
        train_loop_config={"name": name, "model": model, "data": ray.put(np.ascontiguousarray(data)),
                           "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                           "beta": beta, "seed": cfg.seed},
        scaling_config=ScalingConfig(num_workers=1, use_gpu=gpus > 0),
        run_config=RunConfig(name=run_name, storage_path=storage_path, storage_filesystem=storage_filesystem,
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    result = trainer.fit()
    with result.checkpoint.as_directory() as folder:
        model.load_state_dict(load_file(f"{folder}/model.safetensors"))
    log.info("%s VAE trained on Ray Train (%s); checkpoint %s", name, "GPU" if gpus else "CPU", result.checkpoint.path)
    return result.metrics["history"], "ray_train_gpu" if gpus else "ray_train_cpu"


def _vae_worker(loop_config: dict) -> None:
    """Ray Train loop: train the VAE on this worker's device, report each epoch, checkpoint the weights at the end."""
    import tempfile

    import ray.train
    from ray.train.torch import get_device
    from safetensors.torch import save_file

    model, epochs = loop_config["model"], loop_config["epochs"]

    def report(history: list[dict]) -> None:
        metrics = {key: float(value) for key, value in history[-1].items()}
        if len(history) < epochs:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(weights, f"{folder}/model.safetensors")
            ray.train.report({**metrics, "history": history},
                             checkpoint=ray.train.Checkpoint.from_directory(folder))

    train_vae(model, ray.get(loop_config["data"]), epochs, loop_config["batch_size"], loop_config["learning_rate"],
              loop_config["beta"], loop_config["seed"], device=str(get_device()),
              log=lambda m: log.info("%s VAE %s", loop_config["name"], m), on_epoch=report)


# --- outputs -----------------------------------------------------------------------------------------------


def _write_vectors(loc: Location, uris: list[str], item_idx: pa.Array, vectors: np.ndarray, present: np.ndarray) -> None:
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
    table = pa.table({
        "track_uri": pa.array(uris, pa.string()),
        "item_idx": item_idx,
        "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        "present": pa.array(present, pa.bool_()),
    })
    artifacts.write_table(loc, table)


def _hidden_genres(config: MMRecConfig) -> dict[str, int]:
    """track URI -> the demo corpus's hidden genre, for the fused map (empty for a real corpus)."""
    hidden = layout.demo_corpus(config.artifact_root, config.demo_data.output).join("hidden", "song_genres.csv")
    if not hidden.exists():
        return {}
    genres = pacsv.read_csv(io.BytesIO(artifacts.read_bytes(hidden)))
    return dict(zip(genres["track_uri"].to_pylist(), genres["genre"].to_pylist()))
