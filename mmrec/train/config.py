"""Settings of `mmrec train`: the model (content, fusion, sizes), the optimisation, validation and Ray Train."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from mmrec.config_base import PROTOCOL, RUNTIME, SCORING, StrictConfig
from mmrec.embed.config import Modality


# What early stopping on the demo's validation targets favoured (docs/benchmarks.md, "Convergence"): the causal
# SASRec overfits within a few epochs and gains from RecBole's 0.5; the cloze BERT4Rec masks songs already and
# learns slower with more dropout.
DEFAULT_DROPOUT = {"sasrec": 0.5, "bert4rec": 0.2}
# To early stopping on both peer splits (three seeds each, docs/benchmarks.md) SASRec learned as far or further at
# RecBole's 1e-3 than at 3e-3; BERT4Rec's cloze task learns slower and gained 30% from 3e-3 on the full demo.
DEFAULT_LEARNING_RATE = {"sasrec": 1e-3, "bert4rec": 3e-3}
# Late in training SASRec ranks rare songs better and popular ones worse (docs/benchmarks.md, "A popularity prior
# chosen on validation"); a prior weighted on validation gives the head back without stopping before the tail.
DEFAULT_POPULARITY_WEIGHTS = (0.0, 0.15, 0.3, 0.6)
# Validating and keeping an average of the weights lifted both architectures to early stopping (docs/benchmarks.md,
# "Popularity in the training logits, and averaged weights"), but the average lags a rising curve: BERT4Rec, which
# `make demo`, the tests and tune's trials train for a few epochs, lost 11% at epoch 10 with it, so it is off there.
DEFAULT_WEIGHT_AVERAGING = {"sasrec": 0.98, "bert4rec": 0.0}
# Songs never played are placed by their content alone, so training must place songs that way too: SASRec with the
# content tables frozen and a third of the ID rows left out of each step ranked held-out songs far better (recall@500
# .639 against .434 fine-tuned, .450 frozen alone) with the warm songs level (docs/benchmarks.md, "Songs without
# plays"). Fine-tuning defeats it: a fine-tuned content row is a second ID row, which a new song lacks. It starts
# slower (-13% at epoch 10), so runs of a few epochs may prefer the old pair. BERT4Rec keeps the report's
# fine-tuned content: with both its warm songs lost 2.3% (held-out songs not measured).
DEFAULT_CONTENT_TRAINABLE = {"sasrec": False, "bert4rec": True}
DEFAULT_ID_DROPOUT = {"sasrec": 0.3, "bert4rec": 0.0}
# Field markers: runtime settings (where, how fast, under which name) leave the derived run name alone; protocol
# settings (how models are validated and compared) are part of a run but no hyper-parameter for tune to search.
# Scoring settings shape the registered model's scores but not its training: a run trained once can be registered
# again with others (they leave the run name alone; the registered model's card records them).
RUNTIME_ONLY = {RUNTIME: True}
PROTOCOL_ONLY = {PROTOCOL: True}
SCORING_ONLY = {SCORING: True}
# The hybrid scorer (models/hybrid.py): blending the trained model with EASE lifted every SASRec of the peer runs
# 10-14% over three seeds on the full demo, with or without content (docs/benchmarks.md, "The hybrid scorer").
# 0 is always a candidate, so validation can keep the model alone. The grid stops at 0.5, so a registered model
# always keeps a share of the trained model: make demo's 10-epoch ID-only BERT4Rec validated level at 0.5 and 1
# (EASE alone, which set in the grid is allowed) and chose 0.3, the old grid's top, before 0.5 was added.
DEFAULT_EASE_BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
# Inside a blend EASE ranks the popular songs, so the model's prior (chosen for the model alone: 1.15-1.3 whole on
# the full demo) can give the long tail back: chosen with the weight, priors 0-1.6 gave 0.8 for each of four SASRecs
# (docs/benchmarks.md, "The prior inside the blend").
DEFAULT_EASE_BLEND_PRIORS = (0.4, 0.6, 0.8, 1.0)


class TrainConfig(StrictConfig):
    run_name: str = Field(
        "", json_schema_extra=RUNTIME_ONLY,
        description="name under runs/ and models/; a re-run with the same name resumes from its last checkpoint "
        "(empty = derived from the model settings, so the same settings resume and new ones start afresh)",
    )
    architecture: Literal["bert4rec", "sasrec"] = Field(
        "bert4rec", description="bidirectional cloze model, or SASRec (causal, next song at every position) as a baseline"
    )
    modalities: tuple[Modality, ...] = Field(
        ("audio", "lyrics", "album_art", "artist_bio"),
        description="content tables that initialise the item representations; [] = ID-only BERT4Rec",
    )
    fusion: Literal["concat", "per_modality"] = Field(
        "concat", description="concatenate the modality vectors, or one transformer per modality with learned weights"
    )
    projection: Literal["linear", "mlp"] = Field("linear", description="content vector -> hidden size")
    id_embedding: bool = Field(True, description="add a learned ID embedding to the content (always on when ID-only)")
    item_norm: bool | None = Field(
        None, description="LayerNorm on every song's representation (one norm for all songs), or free rows whose norm "
        "can carry a song's popularity, as in RecBole's SASRec; empty = what won to early stopping "
        "(docs/benchmarks.md): free rows, except LayerNorm for BERT4Rec with content")
    content_trainable: bool | None = Field(
        None, description="fine-tune the content tables (the report found frozen worse, without ID rows beside them); "
        "empty = what won (docs/benchmarks.md): frozen for SASRec, whose ID rows learn what content misses and whose "
        "never-played songs then rank as training placed content-only rows; fine-tuned for BERT4Rec")
    hidden: int = Field(64, ge=8, description="hidden size (a multiple of heads)")
    layers: int = Field(2, ge=1, description="transformer layers")
    heads: int = Field(2, ge=1, description="attention heads")
    max_length: int = Field(50, ge=2, description="songs per window, [MASK] included")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="transformer dropout (embeddings, attention, feed-forward); empty = what won "
        "on the demo for the architecture (benchmarks/convergence.py): 0.5 for SASRec (as RecBole's), 0.2 for BERT4Rec")
    loss: Literal["full", "sampled"] = Field(
        "full", description="full softmax over the catalogue, or sampled softmax with log-Q correction (huge catalogues)"
    )
    negatives: int = Field(1024, ge=1, description="shared negatives per batch, for loss=sampled")
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "popularity", description="for loss=sampled: draw negatives uniformly or in proportion to training plays"
    )
    epochs: int = Field(30, ge=1, description="most epochs")
    patience: int = Field(4, ge=1, description="stop after this many epochs without a better validation metric")
    batch_size: int = Field(128, ge=1, description="windows per step on each worker")
    learning_rate: float | None = Field(
        None, gt=0, description="AdamW step size; empty = what won to early stopping for the architecture "
        "(docs/benchmarks.md): 1e-3 for SASRec (as RecBole's), 3e-3 for BERT4Rec")
    weight_decay: float = Field(0.01, ge=0)
    mask_probability: float = Field(0.2, gt=0, lt=1, description="share of songs masked in cloze examples")
    last_only_share: float = Field(
        0.25, ge=0, le=1, description="share of windows with only the last song masked (the inference condition)"
    )
    windows: Literal["recent", "sliding"] = Field(
        "sliding", description="training windows: the most recent windows_per_playlist non-overlapping windows of each "
        "history, or sliding windows that make every song of a history a next-song target once, each after at least "
        "max_length - window_stride songs of context (RecBole's every-prefix training, one pass per window)")
    window_stride: int = Field(
        0, ge=0, description="for windows=sliding: songs between the ends of consecutive windows (0 = max_length // 2)")
    windows_per_playlist: int = Field(
        1, ge=1, description="for windows=recent: most recent non-overlapping windows of max_length per history"
    )
    popularity_weights: tuple[float, ...] = Field(
        DEFAULT_POPULARITY_WEIGHTS, min_length=1,
        description="weights of a popularity prior added to every score at scoring time (weight x log(1 + training "
        "plays)); every epoch's validation tries each and keeps the best with the checkpoint; [0] = no prior")
    logit_adjustment: float = Field(
        1.0, allow_inf_nan=False,
        description="tau: every training logit gets tau x log(1 + the song's training plays) added, and scores keep "
        "it (the logit-adjusted loss of Menon et al. 2021): the item rows learn what popularity does not explain "
        "(1 won with content for both architectures, docs/benchmarks.md); 0 = off")
    unplayed_popularity: Literal["mean", "artist"] = Field(
        "artist",
        description="the popularity term of songs without training plays (held out by cold_share): their artist's "
        "(the mean of the artist's played songs, shrunk towards the mean song's; with both popularity terms on, "
        "held-out songs' recall@20 .0025 -> .0202 on the demo, warm songs level: docs/results.md), or the mean song's")
    id_dropout: float | None = Field(
        None, ge=0, lt=1,
        description="share of songs whose ID embedding each training step leaves out, so content alone must place "
        "them (DropoutNet): never-played songs are then ranked from content as training ranked them; needs "
        "modalities and an ID embedding (ignored otherwise); 0 = off; empty = what won: 0.3 for SASRec (with frozen "
        "content), 0 for BERT4Rec")
    weight_averaging: float | None = Field(
        None, ge=0, lt=1,
        description="decay of an exponential moving average of the weights, updated every optimizer step: "
        "validation, checkpoints and the registered model use the average (0 = off, the raw weights); empty = what "
        "won to early stopping (docs/benchmarks.md): 0.98 for SASRec; 0 for BERT4Rec, which gains from it to early "
        "stopping too but loses in the few epochs of make demo and the tests (set it for long runs)")
    ease_blend_weights: tuple[float, ...] = Field(
        DEFAULT_EASE_BLEND_WEIGHTS, min_length=1, json_schema_extra=SCORING_ONLY,
        description="the hybrid scorer: weights w of EASE in (1 - w) x the model's scores + w x EASE's (each "
        "standardised per playlist); at registration the best on the validation targets is kept with the model and "
        "used by evaluate, experiment and serve (0 is always tried: validation can keep the model alone); [0] = off")
    ease_blend_priors: tuple[float, ...] = Field(
        DEFAULT_EASE_BLEND_PRIORS, json_schema_extra=SCORING_ONLY,
        description="whole weights of the popularity prior (logit_adjustment + the validated popularity weight) the "
        "model may score with inside the hybrid: each is tried with every blend weight on the validation targets, "
        "beside the model's own prior (always tried, and kept on a tie); the registered weights keep the model-alone "
        "prior; [] = the model's own prior only")
    ease_blend_l2: tuple[float, ...] = Field(
        (30.0, 100.0, 300.0, 1000.0), min_length=1, json_schema_extra=SCORING_ONLY,
        description="EASE's L2 weight (lambda) in the hybrid: one value, or a grid whose best on the validation "
        "targets (EASE alone) is used")
    ease_blend_max_songs: int = Field(
        20000, ge=0, json_schema_extra=SCORING_ONLY,
        description="the hybrid's EASE is a dense songs x songs matrix (4 bytes x songs^2: 20,000 songs 1.6 GB) held "
        "by the registered model and every serving replica: fitted on at most this many most-played songs (the "
        "rest get no EASE term); 0 = as many as fit in the memory available at registration")
    metric: str = Field("ndcg@20", json_schema_extra=PROTOCOL_ONLY, description="validation metric for early stopping and the best checkpoint")
    ks: tuple[int, ...] = Field((20, 500), json_schema_extra=PROTOCOL_ONLY, description="cut-offs of Recall@k and NDCG@k")
    valid_playlists: int = Field(
        20000, ge=0, json_schema_extra=PROTOCOL_ONLY, description="fixed validation playlists scored every epoch (a seeded sample; 0 = all)"
    )
    eval_batch_size: int = Field(256, ge=1, json_schema_extra=RUNTIME_ONLY)
    workers: int = Field(2, ge=1, json_schema_extra=RUNTIME_ONLY, description="Ray Train workers (DDP)")
    cpus_per_worker: int = Field(1, ge=1, json_schema_extra=RUNTIME_ONLY)
    gpus_per_worker: float = Field(
        1.0, gt=0, le=1, json_schema_extra=RUNTIME_ONLY, description="GPU share per worker when the cluster has GPUs (fractions pack Tune trials)"
    )
    use_gpu: Literal["auto", "yes", "no"] = Field("auto", json_schema_extra=RUNTIME_ONLY, description="auto = a GPU per worker when the cluster has GPUs")
    max_failures: int = Field(2, ge=0, json_schema_extra=RUNTIME_ONLY, description="worker-group restarts from the last checkpoint before giving up")
    cold_share: float = Field(
        0.0, ge=0, lt=1, json_schema_extra=PROTOCOL_ONLY,
        description="share of songs held out of training entirely (their content stays): evaluate then ranks "
        "test targets among them from content alone, against random and popularity",
    )
    register_model: bool = Field(True, json_schema_extra=RUNTIME_ONLY, description="write models/<run_name>/ from the best checkpoint when training ends")
    seed: int = Field(0, ge=0)

    def resolved(self) -> dict:
        """The settings whose empty value means a per-model default, as they resolve for this model (what trains,
        and what run names hash: a changed default must start a new run, not resume an old one)."""
        return {"dropout": self.model_dropout, "item_norm": self.model_item_norm,
                "learning_rate": self.model_learning_rate, "weight_averaging": self.model_weight_averaging,
                "content_trainable": self.model_content_trainable, "id_dropout": self.model_id_dropout}

    def _value_or_default(self, value, defaults: dict):
        """A setting's value, or the architecture's default where it is left empty."""
        return value if value is not None else defaults[self.architecture]

    @property
    def model_content_trainable(self) -> bool:
        """False for an ID-only model, which has no content to train (so its run name and card say nothing else)."""
        return bool(self.modalities) and self._value_or_default(self.content_trainable, DEFAULT_CONTENT_TRAINABLE)

    @property
    def model_id_dropout(self) -> float:
        """0 for an ID-only model, whose songs have nothing but their ID row to be placed by."""
        return self._value_or_default(self.id_dropout, DEFAULT_ID_DROPOUT) if self.modalities else 0.0

    @property
    def model_learning_rate(self) -> float:
        return self._value_or_default(self.learning_rate, DEFAULT_LEARNING_RATE)

    @property
    def model_dropout(self) -> float:
        return self._value_or_default(self.dropout, DEFAULT_DROPOUT)

    @property
    def model_weight_averaging(self) -> float:
        return self._value_or_default(self.weight_averaging, DEFAULT_WEIGHT_AVERAGING)

    @property
    def model_item_norm(self) -> bool:
        """train.item_norm, or what won to early stopping (docs/benchmarks.md, "Free item norms"): free rows, except
        for BERT4Rec with content, which lost 15% with them on the full demo (two seeds). Free rows lifted ID-only
        SASRec and BERT4Rec 6-14% on every split and SASRec with content 6-14% on both peer splits (-5% on the
        full demo, one seed)."""
        if self.item_norm is not None:
            return self.item_norm
        return self.architecture == "bert4rec" and bool(self.modalities)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.hidden % self.heads:
            raise ValueError(f"train.hidden ({self.hidden}) must be a multiple of train.heads ({self.heads})")
        names = {f"{m}@{k}" for m in ("recall", "ndcg") for k in self.ks}
        if self.metric not in names:
            raise ValueError(f"train.metric {self.metric!r} is not one of {sorted(names)} (from train.ks)")
        if self.window_stride >= self.max_length:
            raise ValueError(f"train.window_stride ({self.window_stride}) must be below train.max_length "
                             f"({self.max_length})")
        if not all(math.isfinite(w) for w in self.popularity_weights):
            raise ValueError(f"train.popularity_weights must be finite numbers: {list(self.popularity_weights)}")
        if not all(0 <= w <= 1 for w in self.ease_blend_weights):
            raise ValueError(f"train.ease_blend_weights must lie in [0, 1]: {list(self.ease_blend_weights)}")
        if not all(math.isfinite(p) for p in self.ease_blend_priors):
            raise ValueError(f"train.ease_blend_priors must be finite numbers: {list(self.ease_blend_priors)}")
        if not all(l2 > 0 and math.isfinite(l2) for l2 in self.ease_blend_l2):
            raise ValueError(f"train.ease_blend_l2 values must be finite and > 0: {list(self.ease_blend_l2)}")
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"train.modalities lists a modality twice: {list(self.modalities)}")
        return self
