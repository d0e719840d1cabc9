"""Shared fixtures: a tiny PTC-style corpus written here, and a tiny random encoder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unspin import Analysis, Analyzer
from unspin.analysis import PhraseEntities, PhraseTagger

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
FAKES = json.loads((GOLDEN / "example_fakes.json").read_text("utf-8"))


def example_analysis() -> Analysis:
    """The example article analysed with the fake phrase tagger (golden-file tests)."""
    phrases = {k: (v[0], v[1]) for k, v in FAKES["phrases"].items()}
    analyzer = Analyzer(PhraseTagger(phrases), entities=PhraseEntities(FAKES["entities"]))
    text = (ROOT / "examples" / "article.txt").read_text("utf-8")
    return analyzer.analyze(text, title=text.split("\n", 1)[0], source="examples/article.txt")


# Our own short texts (never corpus articles). Offsets below are computed from the phrases.
ARTICLES = {
    "1001": (
        "Heroes of the Nation\n\nThe brave soldiers of our great nation crushed the takfiri "
        "terrorists yesterday.\nThe ministry said 40 people were evacuated from the town.\n"
        "Only traitors doubt the great victory of our people.\n"
    ),
    "1002": (
        "\ufeffA Warning\n\nThe mercenaries of the US will bring chaos and death to every home.\n"
        "Officials met on Tuesday to discuss the budget.\nThe mercenaries of the US must go.\n"
    ),
    "1003": (
        "Council News\n\nThe council approved a new bus route on Monday.\nResidents can "
        "comment until March.\nSome call the plan a disgraceful waste of money.\n"
    ),
    "1004": (
        "Plain Report\n\nThe bridge will close for repairs next week.\nDrivers should use the "
        "northern road.\nThe corrupt elites laugh at ordinary families.\n"
    ),
}

PHRASES = [
    ("1001", "brave soldiers of our great nation", "Flag-Waving"),
    ("1001", "takfiri terrorists", "Name_Calling,Labeling"),
    ("1001", "crushed", "Loaded_Language"),
    ("1001", "Only traitors doubt", "Name_Calling,Labeling"),
    ("1001", "the great victory of our people", "Flag-Waving"),
    ("1002", "mercenaries of the US", "Name_Calling,Labeling"),
    ("1002", "will bring chaos and death to every home", "Appeal_to_fear-prejudice"),
    ("1003", "disgraceful waste of money", "Loaded_Language"),
    ("1004", "corrupt elites", "Name_Calling,Labeling"),
]


def gold_rows() -> list[tuple[str, str, int, int]]:
    rows = []
    for aid, phrase, tech in PHRASES:
        text = ARTICLES[aid]
        start = text.index(phrase)
        rows.append((aid, tech, start, start + len(phrase)))
        if aid == "1002" and phrase.startswith("mercenaries"):  # repeated phrase
            second = text.index(phrase, start + 1)
            rows.append((aid, "Repetition", second, second + len(phrase)))
    return rows


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ptc")
    arts = root / "train-articles"
    arts.mkdir()
    for aid, text in ARTICLES.items():
        with open(arts / f"article{aid}.txt", "w", encoding="utf-8", newline="") as f:
            f.write(text)
    rows = gold_rows()
    (root / "train-task-flc-tc.labels").write_text(
        "".join(f"{a}\t{t}\t{s}\t{e}\n" for a, t, s, e in rows), encoding="utf-8"
    )
    (root / "train-task-si.labels").write_text(
        "".join(f"{a}\t{s}\t{e}\n" for a, _, s, e in rows), encoding="utf-8"
    )
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("1001\n1003\n", encoding="utf-8")
    (root / "splits" / "val.txt").write_text("1004\n1002\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT and a WordPiece tokenizer over the test texts."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    folder = tmp_path_factory.mktemp("encoder")
    words: set[str] = set()
    for text in ARTICLES.values():
        pre = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text.lower().replace("\ufeff", ""))
        words |= {w for w, _ in pre}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.save(str(folder / "tokenizer.json"))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    return folder
