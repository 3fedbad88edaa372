"""The hybrid scorer: per-playlist standardisation, the blend with EASE, its weight chosen on validation, and its
round trip through a registered model folder."""

import numpy as np
import pytest
import torch

from mmrec import artifacts
from mmrec.artifacts import ArtifactError
from mmrec.evaluate.metrics import evaluate_scorer
from mmrec.models import registry
from mmrec.models.ease import EASE
from mmrec.models.hybrid import Hybrid, by_prior, choose_blend, choose_weight, prior_shift, shifted, zscored
from tests.models.test_registry import N, items_table

PAIRS = [(1, 7), (2, 8), (3, 9)]  # song a is always followed by its partner b in the training playlists


def planted_histories(rng, playlists: int = 300) -> list[np.ndarray]:
    """Playlists of random songs 1..N, each holding one planted pair: EASE learns a -> b."""
    histories = []
    for _ in range(playlists):
        a, b = PAIRS[rng.integers(len(PAIRS))]
        others = rng.choice([s for s in range(1, N + 1) if s not in (a, b)], size=3, replace=False)
        histories.append(np.array([*others, a, b]))
    return histories


def fitted_ease(rng) -> EASE:
    return EASE(planted_histories(rng), N, np.full(N, 10), l2=10.0)


def test_zscores_standardise_each_row_over_its_candidates_only():
    scores = torch.tensor([[float("-inf"), 1.0, 2.0, 3.0, 100.0, float("-inf")]])
    history = torch.tensor([[0, 4]])  # song 4 is in the history; column 5 is excluded (-inf)
    z = zscored(scores, history)
    candidates = z[0, 1:4]
    assert torch.allclose(candidates.mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(candidates.pow(2).mean(), torch.tensor(1.0), atol=1e-5)
    assert z[0, 4] > 10  # the history song is scaled by the candidates' statistics, not one of them
    assert z[0, 0] == float("-inf") and z[0, 5] == float("-inf")
    # Columns outside `columns` come back 0 (no opinion); a row without spread comes back 0 everywhere.
    only = torch.tensor([False, True, True, False, False, False])
    assert zscored(scores, history, only)[0, 3:].eq(0).all()
    assert zscored(torch.ones(1, 6), history).eq(0).all()


def test_a_blend_at_weight_zero_or_one_ranks_as_that_scorer_alone_whatever_the_scales():
    from types import SimpleNamespace

    torch.manual_seed(0)
    model_scores, ease_scores = torch.randn(3, 9), torch.randn(3, 9) * 50 + 7  # scales differ: z-scoring evens them
    model_scores[:, 0] = float("-inf")  # as real scorers give the padding column
    ease_scores[:, [3, 5]] = 1e6  # a co-occurrence model scores the history high: it must not set the scale
    ease = SimpleNamespace(score=lambda h: ease_scores.clone(), items=torch.arange(1, 9), num_items=8)
    histories = torch.tensor([[0, 3, 5]] * 3)  # left-padded: songs 3 and 5 are every row's history
    candidates = [1, 2, 4, 6, 7, 8]
    hybrid = Hybrid(ease, 0.5)
    for weight, alone in ((0.0, model_scores), (1.0, ease_scores)):
        blended = hybrid.blend(model_scores, histories, weight)
        assert torch.isinf(blended[:, 0]).all() and torch.isfinite(blended[:, 1:]).all()
        assert torch.equal(blended[:, candidates].argsort(dim=1), alone[:, candidates].argsort(dim=1))
    standard = zscored(ease_scores, histories)[:, candidates]
    assert torch.allclose(standard.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(standard.std(1, unbiased=False), torch.ones(3))
    half = hybrid.blend(model_scores, histories)[:, candidates]
    assert torch.allclose(half, 0.5 * zscored(model_scores, histories)[:, candidates] + 0.5 * standard)


def test_the_blend_moves_from_the_model_to_ease_as_its_weight_grows_and_keeps_exclusions():
    ease = fitted_ease(np.random.default_rng(0))
    cold = 2
    model_scores = torch.linspace(1.0, 0.0, N + 1 + cold)[None, :].repeat(2, 1)  # favours low ids: song 1, 2, ...
    model_scores[:, 0] = float("-inf")
    model_scores[1, 5] = float("nan")  # a broken score stays broken: the metric counts it against the target
    histories = torch.tensor([[4, 1], [5, 2]])
    hybrid = Hybrid(ease, 0.5)
    alone = hybrid.blend(model_scores, histories, weight=0.0)
    masked = alone.clone()
    masked[:, [1, 4]] = float("-inf")
    assert int(masked[0].argmax()) == 2  # weight 0 ranks as the model does (its best unseen song)
    led = hybrid.blend(model_scores, histories, weight=1.0)
    led[0, [1, 4]] = float("-inf")
    led[1, [2, 5]] = float("-inf")
    assert int(led[0, :N + 1].argmax()) == 7 and int(led[1, :N + 1].argmax()) == 8  # weight 1: EASE's partners
    assert led[:, N + 1:].eq(0).all()  # cold songs: no EASE opinion, and weight 1 leaves nothing else
    assert torch.isinf(led[:, 0]).all() and torch.isnan(hybrid.blend(model_scores, histories)[1, 5])


def test_the_weight_is_chosen_on_validation_and_zero_wins_a_tie():
    rng = np.random.default_rng(1)
    ease = fitted_ease(rng)
    histories = [np.array([s, a]) for s, (a, _) in zip(rng.integers(10, 13, size=60), PAIRS * 20)]
    targets = np.array([b for _, b in PAIRS * 20])

    def popularity(padded):  # a model that knows nothing of the pairs
        return torch.linspace(1.0, 0.0, N + 1)[None, :].repeat(len(padded), 1)

    weight, measured = choose_weight(popularity, ease, [0.0, 0.5, 1.0], histories, targets, "ndcg@20", (20,))
    assert weight > 0 and measured[weight]["ndcg@20"] > measured[0.0]["ndcg@20"]
    # A model that already scores as EASE does gains nothing from it: every weight ties, and 0 is kept.
    weight, measured = choose_weight(ease.score, ease, [0.0, 0.5, 1.0], histories, targets, "ndcg@20", (20,))
    assert weight == 0.0 and len({round(m["ndcg@20"], 6) for m in measured.values()}) == 1


def test_the_prior_inside_the_blend_is_chosen_with_the_weight_and_the_own_prior_wins_a_tie():
    rng = np.random.default_rng(3)
    ease = fitted_ease(rng)
    histories = [np.array([s, a]) for s, (a, _) in zip(rng.integers(10, 13, size=60), PAIRS * 20)]
    targets = np.array([b for _, b in PAIRS * 20])
    log_plays = torch.zeros(N + 1)
    log_plays[10:13] = 3.0  # the "popular" songs 10-12: a strong prior floods the top with them, never a target

    def model_score(padded):  # knows nothing but popularity: its scores are its prior (weight 2)
        return 2.0 * log_plays[None, :].repeat(len(padded), 1)

    shifts = {2.0: None, 0.0: -2.0 * log_plays, 1.0: -1.0 * log_plays}
    (prior, weight), measured = choose_blend(model_score, ease, [0.0, 0.3], histories, targets, "ndcg@20", (20,),
                                             shifts=shifts)
    assert set(measured) == {(2.0, 0.0), (2.0, 0.3), (0.0, 0.3), (1.0, 0.3)}  # weight 0 only with its own prior
    assert (prior, weight) == (0.0, 0.3)  # the prior given back: EASE's partners are no longer buried
    assert measured[prior, weight]["ndcg@20"] > measured[2.0, 0.3]["ndcg@20"] > measured[2.0, 0.0]["ndcg@20"]
    assert by_prior(measured, "ndcg@20") == {"2": {"0": measured[2.0, 0.0]["ndcg@20"], "0.3": measured[2.0, 0.3]["ndcg@20"]},
                                             "0": {"0.3": 1.0}, "1": {"0.3": measured[1.0, 0.3]["ndcg@20"]}}
    # A shift that changes no ranking ties everywhere: the model's own prior is kept.
    (prior, _), _ = choose_blend(model_score, ease, [0.0, 0.3], histories, targets, "ndcg@20", (20,),
                                 shifts={2.0: None, 5.0: torch.zeros(N + 1)})
    assert prior == 2.0


def test_a_prior_shift_scores_as_the_model_with_that_prior_cold_songs_included():
    from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig

    config = BERT4RecConfig(num_items=N, hidden=8, layers=1, heads=2, max_length=6, logit_adjustment=1.0)
    torch.manual_seed(0)
    model = BERT4Rec(config).eval()
    model.set_popularity(np.arange(1, N + 1) * 3)
    model.popularity_weight.fill_(0.3)  # its own prior: 1.3 whole
    histories = torch.tensor([[0, 1, 4], [2, 3, 5]])
    own = model.score(histories)
    assert prior_shift(model, 1.3) is None and torch.equal(shifted(own, None), own)
    moved = shifted(own, prior_shift(model, 0.8))
    model.popularity_weight.fill_(-0.2)  # the same model scoring with prior 0.8 itself
    assert torch.allclose(moved, model.score(histories), atol=1e-5, equal_nan=True)
    cold = torch.cat([own, torch.zeros(2, 2)], dim=1)  # two cold songs: the mean song's term, as the model gives them
    model.popularity_weight.fill_(0.3)
    expected = model.popularity_prior(N + 3)[N + 1:] * (0.8 - 1.3) / 1.3
    assert torch.allclose(shifted(cold, prior_shift(model, 0.8))[:, N + 1:], expected.expand(2, 2), atol=1e-5)


def test_a_registered_hybrid_round_trips_and_a_registration_without_one_removes_it(tmp_path):
    from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig

    config = BERT4RecConfig(num_items=N, hidden=8, layers=1, heads=2, max_length=6)
    torch.manual_seed(0)
    model = BERT4Rec(config).eval()
    hybrid = Hybrid(fitted_ease(np.random.default_rng(2)), 0.3)
    loc = artifacts.resolve(str(tmp_path / "models" / "m"))
    uris = [f"spotify:track:{i}" for i in range(1, N + 1)]
    songs = registry.songs_table(uris, np.arange(1, N + 1), {})

    def write(with_hybrid):
        registry.write_model(loc, config, registry.weights_to_bytes(model.state_dict()), items_table(), songs,
                             {"valid": {}}, {"name": "m"}, hybrid if with_hybrid else None)

    write(True)
    loaded = registry.load_model(loc)
    assert loaded.hybrid.weight == 0.3 and loaded.hybrid.ease.l2 == 10.0 and loaded.hybrid.model_prior is None
    histories = torch.tensor([[0, 1, 4], [2, 3, 5]])
    expected = hybrid.blend(model.score(histories), histories)
    assert torch.allclose(loaded.scorer()(histories), expected, equal_nan=True)
    # A blend that scores the model with another prior keeps it in hybrid.json; the model alone keeps its own.
    model.set_popularity(np.arange(1, N + 1))
    ease = hybrid.ease
    hybrid = Hybrid(ease, 0.3, 0.5, prior_shift(model, 0.5))
    write(True)
    loaded = registry.load_model(loc)
    assert artifacts.read_json(loc.join("hybrid.json"))["model_prior"] == 0.5 and loaded.hybrid.model_prior == 0.5
    assert torch.allclose(loaded.model.score(histories), model.score(histories), equal_nan=True)
    blended = loaded.scorer()(histories)
    assert torch.allclose(blended, hybrid.blend(model.score(histories), histories), equal_nan=True)
    assert not torch.allclose(blended, Hybrid(ease, 0.3).blend(model.score(histories), histories), equal_nan=True)
    hybrid = Hybrid(ease, 0.3)
    history, target = [np.array([1, 4])], np.array([7])
    assert evaluate_scorer(loaded.scorer(), history, target, (20,)).count == 1
    write(False)
    again = registry.load_model(loc)
    assert again.hybrid is None and not loc.join("ease.safetensors").exists()
    assert torch.allclose(again.scorer()(histories), model.score(histories))
    write(True)  # a truncated or mismatched EASE file is refused by name, not half-loaded
    whole = loc.join("ease.safetensors")
    artifacts.write_bytes(whole, hybrid.to_bytes()[:100])
    with pytest.raises(ArtifactError, match="hybrid.json: a broken hybrid"):
        registry.load_model(loc)
    smaller = Hybrid(EASE([np.array([1, 2])], 2, np.array([1, 1]), 10.0), 0.3)
    artifacts.write_bytes(whole, smaller.to_bytes())
    assert len(registry.load_model(loc).hybrid.ease.items) == 2  # fewer fitted songs is legitimate (top_songs mode)


def test_restore_refuses_weights_of_another_shape():
    with pytest.raises(ValueError, match="do not fit"):
        EASE.restore(torch.arange(1, 4), torch.zeros(2, 2), N, np.full(N, 1), 10.0, "dense")
    with pytest.raises(ValueError, match="do not fit"):
        EASE.restore(torch.tensor([1, N + 5]), torch.zeros(2, 2), N, np.full(N, 1), 10.0, "dense")
