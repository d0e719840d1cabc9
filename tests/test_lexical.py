"""The lexical span classifier: its features, its fit, its file and its place in the Tagger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unspin.errors import ModelError
from unspin.lexical import N_DENSE, LexicalClassifier, dense_features, grams
from unspin.techniques import TECHNIQUES

TEXT = "We will win. The traitors lie. The traitors flee. The traitors lose. Our great nation!"


def test_grams_read_the_span_and_its_context() -> None:
    start = TEXT.index("traitors lie")
    g = grams(TEXT, start, start + len("traitors lie"))
    assert g["w"] == ["traitors", "lie", "traitors lie"]
    assert " tr" in g["c"] and "lie " in g["c"] and "s l" not in g["c"]  # within words only
    assert g["l"] == ["we", "will", "win", "the"]
    assert g["r"][:2] == ["the", "traitors"]


def test_dense_features_count_whole_word_recurrences() -> None:
    start = TEXT.index("traitors")
    f = dense_features(TEXT, start, start + len("traitors"))
    assert f.shape == (N_DENSE,)
    assert f[2] == 1.0 and f[3] == 1.0 and f[4] == pytest.approx(np.log1p(3))
    once = TEXT.index("nation")
    f = dense_features(TEXT, once, once + len("nation"))
    assert f[2] == 0.0 and f[3] == 0.0


def _toy() -> tuple[dict[str, str], dict[str, list[tuple[int, int, str]]]]:
    texts, gold = {}, {}
    phrases = {
        "Name_Calling,Labeling": ["the traitors", "these thugs", "those traitors", "thugs"],
        "Flag-Waving": ["our great nation", "our glorious nation", "the great nation"],
        "Doubt": ["is he really honest", "can we really trust them", "really"],
    }
    for i, (tech, items) in enumerate(phrases.items()):
        for j, p in enumerate(items):
            aid = f"{i}{j}"
            texts[aid] = f"Yesterday {p} spoke again."
            gold[aid] = [(10, 10 + len(p), tech)]
    return texts, gold


def test_fit_learns_toy_techniques_and_the_file_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from unspin.train.lexical import fit_lexical

    texts, gold = _toy()
    clf = fit_lexical(texts, gold, c=10.0)
    new = "Then the thugs and our nation met."
    thugs, nation = new.index("the thugs"), new.index("our nation")
    spans = [(thugs, thugs + len("the thugs")), (nation, nation + len("our nation"))]
    lp = clf.log_probs(new, spans)
    assert lp.shape == (2, len(TECHNIQUES))
    assert np.exp(lp).sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    best = [TECHNIQUES[i] for i in lp.argmax(axis=1)]
    assert best == ["Name_Calling,Labeling", "Flag-Waving"]
    clf.save(tmp_path / "lexical.npz")
    back = LexicalClassifier.load(tmp_path / "lexical.npz")
    assert back.vocab == clf.vocab
    assert back.log_probs(new, spans) == pytest.approx(lp, abs=1e-2)  # fp16 weights
    assert clf.log_probs(new, []).shape == (0, len(TECHNIQUES))
    # the same data gives the same weights
    again = fit_lexical(texts, gold, c=10.0)
    assert np.array_equal(again.coef, clf.coef)


def test_a_broken_lexical_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "lexical.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="add_lexical"):
        LexicalClassifier.load(bad)
    clf = LexicalClassifier(["w|x"], np.ones(1), np.zeros((1 + N_DENSE, 14)), np.zeros(14))
    clf.save(bad)
    whole = bad.read_bytes()
    bad.write_bytes(whole[: len(whole) // 2])  # a truncated download
    with pytest.raises(ModelError, match="Cannot read the lexical classifier"):
        LexicalClassifier.load(bad)
    bad.write_bytes(whole[:-30] + bytes(30))  # a damaged end
    with pytest.raises(ModelError, match="lexical"):
        LexicalClassifier.load(bad)
    wrong = LexicalClassifier(["w|x", "w|y"], np.ones(2), np.zeros((1 + N_DENSE, 14)), np.zeros(14))
    wrong.save(bad)  # weights for one term, a vocabulary of two
    with pytest.raises(ModelError, match="inconsistent"):
        LexicalClassifier.load(bad)
    few = LexicalClassifier(["w|x"], np.ones(1), np.zeros((1 + N_DENSE, 13)), np.zeros(13))
    few.save(bad)  # 13 techniques, not 14
    with pytest.raises(ModelError, match="inconsistent"):
        LexicalClassifier.load(bad)
    clf.save(bad)
    with np.load(bad) as npz:
        arrays = dict(npz)
    np.savez(bad, **(arrays | {"format": np.array([1, 1])}))  # not one number
    with pytest.raises(ModelError, match="Cannot read"):
        LexicalClassifier.load(bad)
    clf.save(bad)
    with np.load(bad) as npz:
        arrays = dict(npz)
    arrays["format"] = np.array(99)
    np.savez(bad, **arrays)
    with pytest.raises(ModelError, match="format 99"):
        LexicalClassifier.load(bad)


def test_tagger_weighs_the_lexical_classifier_in_by_its_weight() -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("fast", threads=1)
    assert tagger.lexical is not None and tagger.config["tc_lexical_weight"] > 0
    text = "They call him a traitor. Our great nation will win."
    spans = [(16, 23), (25, 41)]
    out = tagger.outputs(text)
    head = tagger.classify_outputs(out, spans, 0.0)
    lex = np.exp(tagger.lexical.log_probs(text, spans))
    mixed = tagger.classify_outputs(out, spans, 1.0)
    pooled = np.sqrt(head * lex)  # weight 1: the geometric mean, renormalised
    want = pooled / pooled.sum(axis=1, keepdims=True)
    assert mixed == pytest.approx(want, abs=1e-4)
    assert tagger.classify_outputs(out, spans, 0.0) == pytest.approx(head)  # cache not mixed in


def test_the_tc_task_uses_the_configured_weight_and_joint_labels_do_not() -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("fast", threads=1)
    text = "They call him a traitor. Our great nation will win."
    span = (16, 23)
    tagger.config.update(
        tc_repetition_factor=1.0,
        tc_lexical_weight=0.0,
        tc_reader_weight=0.0,
        tc_calibration_temperature=1,
    )
    out = tagger.outputs(text)
    head = tagger.tc_probs(out, [span])
    tagger.config["tc_lexical_weight"] = 2.0
    assert tagger.tc_probs(out, [span]) == pytest.approx(tagger.classify_outputs(out, [span], 2.0))
    assert np.abs(tagger.tc_probs(out, [span]) - head).max() > 1e-3
    joint = tagger.predict(text, threshold=0.01)
    tagger.config["tc_lexical_weight"] = 0.0
    assert tagger.predict(text, threshold=0.01) == joint


def test_tc_probabilities_are_softened_and_blank_spans_get_the_prior() -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("small", threads=1)
    tagger.config["tc_calibration_temperature"] = 1.5  # as fitted on val when the pool is sure
    text = "Title\n\nThey call him a traitor. Our great nation will win."
    spans = [(5, 7), (22, 29)]
    out = tagger.outputs(text)
    soft = tagger.tc_probs(out, spans)
    assert soft.sum(axis=1) == pytest.approx([1.0, 1.0])
    prior = np.asarray(tagger.config["tc_prior"]) / sum(tagger.config["tc_prior"])
    assert soft[0] == pytest.approx(prior)  # "\n\n": nothing to read
    tagger.config["tc_calibration_temperature"] = 1.0
    sharp = tagger.tc_probs(out, spans)
    assert np.argsort(sharp[1]).tolist() == np.argsort(soft[1]).tolist()  # same ranking
    assert sharp[1].max() > soft[1].max()
