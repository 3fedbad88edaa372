"""Settings of `mmrec embed`: sources, encoders, the VAEs, missing-modality fill, reduction and parallelism."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmrec.config_base import StrictConfig

Modality = Literal["audio", "lyrics", "album_art", "artist_bio"]


class EmbedConfig(StrictConfig):
    modalities: tuple[Modality, ...] = Field(
        ("audio", "lyrics", "album_art", "artist_bio"), description="modalities to embed and fuse"
    )
    songs: Literal["sources", "items"] = Field(
        "sources",
        description="songs to embed: every song the sources describe (cold songs too), or only prepared items",
    )
    audio_features: str = Field("", description="audio features (.csv, .jsonl or .parquet); empty = the demo corpus's")
    lyrics: str = Field("", description="lyrics JSON lines {track_uri, lyrics}; empty = the demo corpus's")
    album_art_index: str = Field("", description="cover index JSON lines {album_uri, path}; empty = the demo corpus's")
    artist_bios: str = Field("", description="biographies JSON lines {artist_uri, bio}; empty = the demo corpus's")
    text_model: str = Field(
        "all-MiniLM-L6-v2", description="sentence-transformer name or path (the default ships in a package)"
    )
    lyrics_encoder: Literal["sentence_transformer", "word_vectors"] = Field(
        "sentence_transformer", description="embed cleaned lyrics with the text model or by averaging word vectors"
    )
    word_vectors: str = Field("", description="GloVe/word2vec text file, for lyrics_encoder=word_vectors")
    lyrics_max_document_share: float = Field(
        0.5, gt=0, le=1, description="drop lyric tokens found in more than this share of songs (low IDF)"
    )
    max_text_words: int = Field(
        128, ge=8, description="texts are cut to this many words before the text model (its cost grows with length)"
    )
    audio_latent: int = Field(16, ge=2, description="audio VAE latent size")
    audio_epochs: int = Field(30, ge=1, description="audio VAE epochs")
    art_model: Literal["vae", "autoencoder"] = Field("vae", description="album-art model (autoencoder: no KL)")
    art_latent: int = Field(64, ge=2, description="album-art VAE latent size")
    art_width: int = Field(16, ge=4, description="channels of the first convolution (doubling at each of 4)")
    art_epochs: int = Field(4, ge=1, description="album-art VAE epochs")
    art_train_sample: int = Field(4000, ge=10, description="covers the album-art VAE trains on (all are embedded)")
    art_export: Literal["mean", "mean_sigma"] = Field("mean", description="export the posterior mean, or mean and sigma")
    audio_beta: float = Field(
        0.1, ge=0,
        description="KL weight of the audio VAE (at 1.0 its posterior collapsed on the demo: 10-NN genre purity "
        "0.36 against 0.60 at 0.1)",
    )
    art_beta: float = Field(1.0, ge=0, description="KL weight of the album-art VAE")
    vae_trainer: Literal["auto", "in_process", "ray_train"] = Field(
        "auto",
        description="where the VAEs train: this process (small data), one Ray Train worker (a GPU when the cluster "
        "has one; checkpoints under runs/), or auto = Ray Train when the cluster has GPUs",
    )
    fill: Literal["mean", "regressor"] = Field(
        "mean", description="missing modality: the mean (the paper's rule) or a ridge regression from the others"
    )
    dim: int = Field(64, ge=2, description="PCA size of each modality before fusion")
    fused_dim: int = Field(0, ge=0, description="PCA size of the concatenation (0 = keep the concatenation)")
    actors: int = Field(2, ge=1, description="most text-model actors in the Ray Data pool")
    batch_size: int = Field(128, ge=1, description="texts per batch through the text model")
    use_gpu: Literal["auto", "yes", "no"] = Field("auto", description="GPUs for the text model: auto = if the cluster has any")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "EmbedConfig":
        if self.lyrics_encoder == "word_vectors" and "lyrics" in self.modalities and not self.word_vectors:
            raise ValueError("embed.word_vectors: a GloVe/word2vec file is needed for lyrics_encoder=word_vectors")
        return self
