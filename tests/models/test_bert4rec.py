"""BERT4Rec: the inference condition, the tied output, masked-only logits, fusion modes, learning."""

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmrec.train.config import TrainConfig
from mmrec.train.loop import best_prior, build_model, train_epoch, validate
from mmrec.train.sequences import epoch_batches, training_windows

N = 40


def tiny(**changes) -> BERT4RecConfig:
    return dataclasses.replace(BERT4RecConfig(num_items=N, hidden=16, layers=1, heads=2, max_length=8, dropout=0.0),
                               **changes)


def content(width=6, seed=0):
    table = torch.from_numpy(np.random.default_rng(seed).normal(size=(N + 1, width)).astype(np.float32))
    table[0] = 0
    return table


def test_inference_appends_mask_after_the_full_history():
    torch.manual_seed(0)
    model = BERT4Rec(tiny()).eval()
    history = torch.tensor([[3, 4, 5, 6]])
    changed = torch.tensor([[3, 4, 5, 7]])  # only the most recent song differs
    scores = model.score(history)
    assert scores.shape == (1, N + 1)
    assert torch.isneginf(scores[0, 0])
    assert not torch.allclose(scores, model.score(changed))  # the last song reaches the model
    hidden, table = model.encode(torch.tensor([[3, 4, 5, 6, N + 1]]))
    assert torch.allclose(scores[0, 1:], (hidden[0, -1] @ table.T)[1:], atol=1e-5)


def test_a_history_scores_the_same_whatever_the_padding_of_its_batch():
    torch.manual_seed(0)
    model = BERT4Rec(tiny()).eval()
    alone = model.score(torch.tensor([[3, 4, 5]]))
    batched = model.score(torch.tensor([[0, 0, 0, 0, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7]]))
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_long_histories_keep_their_latest_songs():
    torch.manual_seed(0)
    model = BERT4Rec(tiny()).eval()
    long = torch.arange(1, 21)[None]
    assert torch.allclose(model.score(long), model.score(long[:, -7:]), atol=1e-6)  # max_length - 1 songs


@pytest.mark.parametrize("causal", [False, True])
def test_the_encoder_computes_torchs_transformer_and_selected_positions_alike(causal):
    """The encoder runs torch's TransformerEncoderLayer weights through its own forward, so that the last layer
    can stop at the positions that are read; it must equal torch's forward at those positions."""
    from mmrec.models.bert4rec import PADDING, SequenceEncoder

    torch.manual_seed(0)
    encoder = SequenceEncoder(hidden=32, layers=2, heads=4, max_length=10, dropout=0.2, causal=causal).eval()
    tokens = torch.randint(1, N + 1, (5, 8))
    tokens[0, :3] = PADDING
    tokens[1, :7] = PADDING  # one song only
    tokens[2, 4] = N + 1  # [MASK]
    table = torch.randn(N + 1, 32)
    x = table[tokens.clamp(max=N)]
    x = torch.where((tokens == N + 1)[..., None], encoder.mask_embedding, x)
    x = encoder.norm(x + encoder.positions(torch.arange(2, 10)))
    if causal:
        blocked = torch.ones(8, 8, dtype=torch.bool).triu(1)[None] | (tokens == PADDING)[:, None, :]
        blocked &= ~torch.eye(8, dtype=torch.bool)
        expected = encoder.transformer(x, mask=blocked.repeat_interleave(4, dim=0))
    else:
        expected = encoder.transformer(x, src_key_padding_mask=tokens == PADDING)
    real = tokens != PADDING  # torch's values at padding positions are not defined the same way
    assert torch.allclose(encoder(tokens, table, N + 1)[real], expected[real], atol=1e-5)
    selected = real & (torch.rand(tokens.shape) < 0.4)
    assert torch.allclose(encoder(tokens, table, N + 1, outputs=selected), expected[selected], atol=1e-5)


def test_training_with_dropout_is_reproducible_and_uses_the_selected_rows_only():
    torch.manual_seed(0)
    model = BERT4Rec(dataclasses.replace(tiny(), dropout=0.3)).train()
    tokens = torch.tensor([[0, 0, 3, N + 1, 5, N + 1], [1, 2, 3, 4, N + 1, 6]])
    labels = torch.tensor([[0, 0, 0, 4, 0, 7], [0, 0, 0, 0, 5, 0]])
    torch.manual_seed(1)
    first = model(tokens, labels)
    torch.manual_seed(1)
    assert torch.equal(first, model(tokens, labels))
    first.backward()
    assert all(p.grad is not None for p in model.encoders[0].transformer.layers[-1].linear1.parameters())


def test_output_is_tied_so_a_cold_song_with_an_items_content_scores_like_it():
    torch.manual_seed(0)
    table = content()
    model = BERT4Rec(tiny(modalities=("fused",), content_dims=(6,), id_embedding=False), {"fused": table}).eval()
    cold = table[[5, 9]]  # two songs outside the catalogue whose content equals items 5 and 9
    scores = model.score(torch.tensor([[1, 2, 3]]), cold_contents=[cold])
    assert scores.shape == (1, N + 1 + 2)
    assert torch.allclose(scores[0, N + 1:], scores[0, [5, 9]], atol=1e-5)


def test_id_only_models_cannot_score_cold_songs():
    model = BERT4Rec(tiny()).eval()
    with pytest.raises(ValueError, match="ID-only"):
        model.score(torch.tensor([[1, 2]]), cold_contents=[torch.zeros(1, 6)])


def test_loss_uses_only_masked_positions_with_the_tied_table():
    torch.manual_seed(0)
    model = BERT4Rec(tiny(modalities=("fused",), content_dims=(6,)), {"fused": content()}).eval()
    tokens = torch.tensor([[0, 0, 3, N + 1, 5, N + 1]])
    labels = torch.tensor([[0, 0, 0, 4, 0, 7]])
    hidden, table = model.encode(tokens)
    expected = F.cross_entropy(hidden[0, [3, 5]] @ table[1:].T, torch.tensor([3, 6]))
    assert torch.allclose(model(tokens, labels), expected, atol=1e-5)


def test_sampled_softmax_is_finite_masks_accidental_hits_and_trains():
    torch.manual_seed(0)
    model = BERT4Rec(tiny(loss="sampled", negatives=N * 4))
    tokens = torch.tensor([[1, 2, N + 1], [4, N + 1, 6]])
    labels = torch.tensor([[0, 0, 3], [0, 5, 0]])
    loss = model(tokens, labels)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.items[0].ids.weight.grad is not None


def test_per_modality_fusion_has_a_stream_per_modality_and_frozen_content_stays_put():
    tables = {"audio": content(4, 1), "lyrics": content(6, 2)}
    model = BERT4Rec(tiny(fusion="per_modality", modalities=("audio", "lyrics"), content_dims=(4, 6),
                          content_trainable=False), tables)
    assert len(model.items) == len(model.encoders) == 2
    assert not model.items[0].content.requires_grad
    loss = model(torch.tensor([[1, 2, N + 1]]), torch.tensor([[0, 0, 3]]))
    loss.backward()
    assert model.stream_weights.grad is not None
    assert model.items[1].content.grad is None


def test_content_tables_must_match_the_config():
    with pytest.raises(ValueError, match="do not match"):
        BERT4Rec(tiny(modalities=("audio",), content_dims=(4,)), {"lyrics": content(4)})


@pytest.mark.parametrize("fusion", ["concat", "per_modality"])
def test_content_initialisation_learns_genre_structure_that_ids_alone_cannot_see(fusion):
    """Four genres of 10 songs; playlists stay in a genre. With content that encodes the genre, a few epochs
    rank the held-out song far better than ID-only BERT4Rec trained the same way."""
    rng = np.random.default_rng(0)
    genre = rng.integers(0, 4, N)
    playlists = [rng.choice(np.flatnonzero(genre == rng.integers(0, 4)) + 1, size=6, replace=False)
                 for _ in range(160)]
    histories, targets = [p[:-1] for p in playlists], np.array([p[-1] for p in playlists])
    table = np.zeros((N + 1, 8), np.float32)
    table[1:] = np.eye(4)[genre].repeat(2, axis=1) + rng.normal(0, 0.1, (N, 8))
    cfg = TrainConfig(batch_size=32, max_length=8, hidden=16, heads=2)
    results = {}
    for name, modalities in (("content", ("a", "b")), ("ids", ())):
        config = tiny(fusion=fusion, modalities=modalities, content_dims=(4, 4)[:len(modalities)],
                      id_embedding=not modalities)
        model = build_model(config, {"a": table[:, :4], "b": table[:, 4:]} if modalities else {}, seed=0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
        windows = training_windows(histories, 8)
        for _ in range(6):
            steps = epoch_batches(np.array([len(w) for w in windows]), cfg.batch_size, rng)
            train_epoch(model, optimizer, [[windows[i] for i in step[0]] for step in steps], cfg, config.mask_token,
                        rng, torch.device("cpu"))
        results[name] = validate(model, histories, targets, (10,), 64, torch.device("cpu"))[0].means()["recall@10"]
    assert results["content"] > 0.6, results  # chance is about 10 / 35
    assert results["content"] > results["ids"] + 0.15, results


def test_scoring_with_precomputed_item_tables_matches_computing_them_per_call():
    torch.manual_seed(0)
    tables = {"audio": content(4, 1), "lyrics": content(6, 2)}
    model = BERT4Rec(tiny(fusion="per_modality", modalities=("audio", "lyrics"), content_dims=(4, 6)), tables).eval()
    cold = [torch.randn(3, 4), torch.randn(3, 6)]
    histories = torch.tensor([[0, 3, 4, 5], [1, 2, 3, 4]])
    with torch.no_grad():
        cached = model.stream_tables(cold)
    assert torch.allclose(model.score(histories, cold, tables=cached), model.score(histories, cold), atol=1e-6)
    assert torch.allclose(model.item_table(tables=cached), model.encode(histories, cold)[1], atol=1e-6)


@pytest.mark.parametrize("fusion", ["concat", "per_modality"])
def test_sampled_softmax_computes_only_the_rows_it_reads_and_matches_the_whole_table(fusion):
    """The compact path (rows of the batch's songs, targets and negatives) gives the loss and gradients of
    scoring against the whole item table with the same negatives."""
    torch.manual_seed(0)
    tables = {"audio": content(4, 1), "lyrics": content(6, 2)}
    config = tiny(loss="sampled", negatives=12, fusion=fusion, modalities=("audio", "lyrics"), content_dims=(4, 6))
    model = BERT4Rec(config, tables).eval()
    model.sampling_probabilities = torch.rand(N) + 0.1
    model.sampling_probabilities /= model.sampling_probabilities.sum()
    tokens = torch.tensor([[0, 0, 3, N + 1, 5, N + 1], [2, 9, N + 1, 11, 12, N + 1]])
    labels = torch.tensor([[0, 0, 0, 4, 0, 7], [0, 0, 30, 0, 0, 2]])
    torch.manual_seed(1)
    compact = model(tokens, labels)
    compact_grads = torch.autograd.grad(compact, [model.items[0].content, model.items[0].ids.weight])
    torch.manual_seed(1)
    negatives = model.draw_negatives()  # the same draw as inside forward
    masked = labels > 0
    targets = labels[masked] - 1
    h, table = model.encode(tokens, outputs=masked)  # every song's row
    songs = table[1:]
    whole = model._sampled_softmax(h, songs[targets], songs[negatives], targets, negatives)
    whole_grads = torch.autograd.grad(whole, [model.items[0].content, model.items[0].ids.weight])
    assert torch.allclose(compact, whole, atol=1e-5)
    for a, b in zip(compact_grads, whole_grads):
        assert torch.allclose(a, b, atol=1e-5)
    # Rows outside the step (songs 13..N not among tokens, targets or negatives) get no gradient.
    read = set(tokens[(tokens > 0) & (tokens <= N)].tolist()) | set((targets + 1).tolist()) | set((negatives + 1).tolist())
    unread = [i for i in range(1, N + 1) if i not in read]
    assert unread and compact_grads[1][unread].abs().sum() == 0


def test_a_scorer_with_its_tables_computed_once_scores_like_score():
    torch.manual_seed(0)
    model = BERT4Rec(tiny(modalities=("fused",), content_dims=(6,)), {"fused": content()}).eval()
    histories = torch.tensor([[0, 3, 4, 5], [1, 2, 3, 4]])
    assert torch.allclose(model.scorer()(histories), model.score(histories), atol=1e-6)


def test_without_item_norm_song_norms_are_free_and_the_logit_scale_starts_at_one():
    torch.manual_seed(0)
    normed = BERT4Rec(tiny(modalities=("fused",), content_dims=(6,)), {"fused": content()})
    free = BERT4Rec(tiny(modalities=("fused",), content_dims=(6,), item_norm=False), {"fused": content()})
    rows = lambda model: model.item_table()[1:].detach().norm(dim=1)  # noqa: E731
    assert rows(normed).std() < 1e-3 * rows(normed).mean()  # LayerNorm: one norm for every song
    assert rows(free).std() > 0.1 * rows(free).mean()
    assert free.logit_scale.item() == 1.0 and normed.logit_scale.item() == pytest.approx(16 ** -0.5)
    assert torch.isfinite(free.eval().score(torch.tensor([[0, 1, 2, 3]]))[:, 1:]).all()
    # Models registered before the setting existed load with it on.
    old = {k: v for k, v in tiny().to_dict().items() if k != "item_norm"}
    assert BERT4RecConfig.from_dict(old).item_norm is True


@pytest.mark.parametrize("with_content", [False, True])
@pytest.mark.parametrize("item_norm", [True, False])
def test_positions_start_at_the_scale_of_the_item_rows_they_are_added_to(item_norm, with_content):
    """Layer-normalised rows have unit variance; free ID rows start at std 0.02, and so do free rows with content
    (projected unit-variance content would start near 0.6). Positions at N(0, 1) beside free rows drown the songs
    at the input (a model that never left the popularity plateau); content rows 30x the positions saturate the
    softmax (loss 15 at the first epoch against 6.6)."""
    torch.manual_seed(0)
    contents = {"fused": content(width=32)} if with_content else {}
    model = BERT4Rec(tiny(item_norm=item_norm, max_length=50, hidden=64, modalities=tuple(contents),
                          content_dims=(32,) * len(contents)), contents)
    rows = model.items[0]().detach()[1:].std().item()
    positions = model.encoders[0].positions.weight.detach().std().item()
    assert 0.5 < positions / rows < 2.0, (positions, rows)
    if with_content and not item_norm:
        projected = model.items[0].project(model.items[0].content[1:]).detach().std().item()
        assert projected == pytest.approx(0.02, rel=0.05)  # content and IDs start level


def test_the_popularity_prior_shifts_scores_by_weight_times_log_plays_and_never_the_loss():
    torch.manual_seed(0)
    model = BERT4Rec(tiny(architecture="sasrec")).eval()
    plays = np.arange(N, dtype=np.float32) + 1  # song j has j plays
    model.set_popularity(plays)
    history = torch.tensor([[3, 4, 5]])
    tokens, labels = torch.tensor([[3, 4, 5, 6]]), torch.tensor([[4, 5, 6, 7]])
    without, loss = model.score(history), model(tokens, labels)
    model.popularity_weight.fill_(0.5)
    shifted = model.score(history)
    assert torch.allclose(shifted[0, 1:] - without[0, 1:], 0.5 * torch.log1p(torch.from_numpy(plays)), atol=1e-5)
    assert torch.isneginf(shifted[0, 0])  # padding stays unrankable
    assert torch.equal(model(tokens, labels), loss)  # training never sees the prior
    cold = model.popularity_prior(N + 1 + 3)  # songs outside the catalogue: unknown, the mean song's prior
    assert cold.shape == (N + 4,) and torch.allclose(cold[N + 1:], 0.5 * torch.log1p(torch.from_numpy(plays)).mean())


@pytest.mark.parametrize("architecture", ["sasrec", "bert4rec"])
def test_logit_adjustment_adds_tau_log_plays_to_the_training_logits_and_keeps_it_in_scores(architecture):
    plays = np.arange(N, dtype=np.float32) ** 2 + 1
    log_plays = torch.log1p(torch.from_numpy(plays))
    tokens = torch.tensor([[3, 4, 5, N + 1]]) if architecture == "bert4rec" else torch.tensor([[3, 4, 5, 6]])
    labels = torch.tensor([[0, 0, 0, 9]]) if architecture == "bert4rec" else torch.tensor([[4, 5, 6, 9]])
    models = {}
    for tau in (0.0, 0.7):
        torch.manual_seed(0)
        models[tau] = BERT4Rec(tiny(architecture=architecture, logit_adjustment=tau)).eval()
        models[tau].set_popularity(plays)
    adjusted, plain = models[0.7], models[0.0]
    masked = labels > 0
    hidden, table = plain.encode(tokens, outputs=masked)
    expected = F.cross_entropy(hidden @ table[1:].T + 0.7 * log_plays, labels[masked] - 1)
    assert torch.allclose(adjusted(tokens, labels), expected, atol=1e-5)
    assert not torch.allclose(plain(tokens, labels), expected, atol=1e-3)  # the adjustment changed the loss
    history = torch.tensor([[3, 4, 5]])
    shift = adjusted.score(history)[0, 1:] - plain.score(history)[0, 1:]
    assert torch.allclose(shift, 0.7 * log_plays, atol=1e-4)  # scores keep what training added
    adjusted.popularity_weight.fill_(0.3)  # a validated extra adds to it
    shift = adjusted.score(history)[0, 1:] - plain.score(history)[0, 1:]
    assert torch.allclose(shift, 1.0 * log_plays, atol=1e-4)


def test_a_sampled_softmax_over_every_song_once_equals_the_adjusted_full_softmax():
    """With q uniform and each song drawn once, the log-Q correction is zero and the sampled loss is the full one:
    the popularity adjustment must enter both the same way."""
    plays = np.arange(N, dtype=np.float32) * 3 + 1
    tokens, labels = torch.tensor([[1, 2, N + 1], [4, N + 1, 6]]), torch.tensor([[0, 0, 3], [0, 5, 0]])
    losses = {}
    for loss in ("full", "sampled"):
        torch.manual_seed(0)
        model = BERT4Rec(tiny(loss=loss, negatives=N, logit_adjustment=0.5)).eval()
        model.set_popularity(plays)
        model.draw_negatives = lambda: torch.arange(N)  # every song once, instead of a random draw
        losses[loss] = model(tokens, labels)
    assert torch.allclose(losses["sampled"], losses["full"], atol=1e-5), losses


def test_a_song_without_training_plays_gets_the_mean_songs_prior_not_the_lowest():
    model = BERT4Rec(tiny())
    plays = np.full(N, 10.0)
    plays[:N // 2] = 100.0
    plays[3] = 0  # held out of training
    model.set_popularity(plays)
    played = np.delete(np.log1p(plays), 3)
    assert model.popularity_log[4] == pytest.approx(played.mean())
    assert model.popularity_log[0] == 0  # padding


def test_a_song_without_plays_can_take_its_artists_prior_shrunk_towards_the_mean():
    model = BERT4Rec(tiny())
    plays = np.full(N, 10.0)
    plays[:4] = 1000.0  # artist 0: three played hits and song 4 (index 3), held out
    plays[3] = plays[10] = plays[20] = 0  # song 11's artist has no played song; song 21's is unknown
    artists = np.arange(N) + 1  # every other song an artist of its own
    artists[:4] = 0
    artists[20] = -1
    model.set_popularity(plays, artists)
    logs = np.log1p(plays)
    mean = np.delete(logs, [3, 10, 20]).mean()
    assert model.popularity_log[4] == pytest.approx((3 * np.log1p(1000.0) + mean) / 4)  # the artist's, shrunk
    assert model.popularity_log[11] == pytest.approx(mean)  # an artist with no played song: the mean song's
    assert model.popularity_log[21] == pytest.approx(mean)  # no artist
    assert model.popularity_log[1] == pytest.approx(np.log1p(1000.0))  # played songs keep their own
    model.set_popularity(plays, np.full(N, -1))  # no artist known at all: the mean song's
    assert model.popularity_log[4] == pytest.approx(mean)


def test_weights_saved_before_the_prior_existed_load_with_it_off():
    torch.manual_seed(0)
    model = BERT4Rec(tiny()).eval()
    old = {k: v for k, v in model.state_dict().items() if not k.startswith(("popularity_log", "popularity_weight"))}
    model.set_popularity(np.ones(N))
    model.popularity_weight.fill_(2.0)
    model.load_state_dict(old)  # strict: the hook fills the two buffers
    assert model.popularity_weight == 0 and (model.popularity_log == 0).all()


def test_validation_scores_each_prior_weight_and_leaves_the_models_own_weight_alone():
    """Playlists whose targets are the most played songs: the prior lifts them, so the highest weight wins."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model(tiny(architecture="sasrec"), {}, seed=0, train_counts=10 ** (np.arange(N) / 4))
    model.popularity_weight.fill_(0.7)
    histories = [rng.choice(np.arange(1, 20), size=4, replace=False) for _ in range(30)]
    targets = rng.integers(N - 4, N + 1, size=30)  # the five most played
    by_prior = validate(model, histories, targets, (5,), 16, torch.device("cpu"), (0.0, 1.0, 30.0))
    recalls = [t.means()["recall@5"] for t in by_prior]
    assert recalls[0] < 0.5 and recalls[2] == 1.0, recalls
    assert best_prior(by_prior, "recall@5") == 2
    assert model.popularity_weight == pytest.approx(0.7)  # restored after validation


@pytest.mark.parametrize("compact", [False, True])
def test_id_dropout_leaves_whole_song_rows_to_content_in_training_only(compact):
    """Each dropped song's row is its content alone (what a cold song's row is), each kept song's is content + ID,
    about a share id_dropout of them dropped; evaluation uses every ID row."""
    torch.manual_seed(0)
    big = 2000
    table = torch.randn(big + 1, 6)
    table[0] = 0
    config = BERT4RecConfig(num_items=big, hidden=16, layers=1, heads=2, max_length=8, dropout=0.0,
                            modalities=("fused",), content_dims=(6,), id_dropout=0.3)
    model = BERT4Rec(config, {"fused": table})
    items = model.items[0]
    with torch.no_grad():
        items.ids.weight.normal_()  # IDs as large as content, so a kept and a dropped row differ plainly
        everything = torch.arange(big + 1)
        full = model.eval().stream_tables()[0]
        assert model.ids_kept() is None
        assert torch.allclose(items.rows(everything), full, atol=1e-6)
        alone = items.norm(items.project(table))
        kept = model.train().ids_kept()
        trained = items.rows(everything, kept) if compact else model.stream_tables()[0]
    dropped = torch.isclose(trained, alone, atol=1e-5).all(1)[1:]
    whole = torch.isclose(trained, full, atol=1e-5).all(1)[1:]
    assert bool((dropped ^ whole).all())  # every row one or the other, whole
    assert 0.25 < dropped.float().mean() < 0.35
    if compact:
        assert torch.equal(dropped, ~kept[1:])


def test_id_dropout_drops_a_song_from_every_stream_at_once():
    """Per-modality fusion has an ID table per stream; a song dropped from one stream but not another would still
    be placed by its ID, so one draw serves them all."""
    torch.manual_seed(0)
    big = 2000
    tables = {name: torch.randn(big + 1, 4) for name in ("audio", "lyrics", "album_art")}
    config = BERT4RecConfig(num_items=big, hidden=16, layers=1, heads=2, max_length=8, dropout=0.0,
                            fusion="per_modality", modalities=tuple(tables), content_dims=(4, 4, 4), id_dropout=0.3)
    model = BERT4Rec(config, tables)
    with torch.no_grad():
        for items in model.items:
            items.ids.weight.normal_()
        model.train()
        torch.manual_seed(1)
        trained = model.stream_tables()
        dropped = [torch.isclose(t, items.norm(items.project(tables[name])), atol=1e-5).all(1)[1:]
                   for t, items, name in zip(trained, model.items, tables)]
    assert 0.25 < dropped[0].float().mean() < 0.35
    assert all(torch.equal(d, dropped[0]) for d in dropped[1:])


def test_id_dropout_is_off_for_id_only_models():
    model = BERT4Rec(tiny(id_dropout=0.5)).train()
    assert model.ids_kept() is None
    assert torch.equal(model.stream_tables()[0], model.eval().stream_tables()[0])
