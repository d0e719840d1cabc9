"""Decode stage: windows stitched back to tokens, runs of tokens to exact character spans."""

from __future__ import annotations

import numpy as np
import pytest

from unspin.decode import runs_to_spans, snap_to_words, span_token_range, split_paragraphs, stitch
from unspin.segment import Encoded, Window, make_windows, run_unpadded, uniform_batches


def _enc(text: str) -> Encoded:
    """Whitespace tokens with their code-point offsets (stands in for a real tokenizer)."""
    offsets, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        offsets.append((start, start + len(word)))
        pos = start + len(word)
    return Encoded(ids=np.arange(len(offsets)) + 10, offsets=np.array(offsets).reshape(-1, 2))


def test_windows_cover_every_token_with_overlap() -> None:
    enc = Encoded(ids=np.arange(25), offsets=np.stack([np.arange(25), np.arange(25) + 1], 1))
    windows = make_windows(enc, cls_id=1, sep_id=2, max_len=10, stride=4)
    covered = np.zeros(25, int)
    for w in windows:
        assert w.ids[0] == 1 and w.ids[-1] == 2 and len(w.ids) == w.n + 2 <= 10
        assert list(w.ids[1:-1]) == list(range(w.first, w.first + w.n))
        covered[w.first : w.first + w.n] += 1
    assert covered.min() >= 1 and covered.max() >= 2


def test_batches_hold_windows_of_one_length_in_order() -> None:
    enc = Encoded(ids=np.arange(36, dtype=np.int64), offsets=np.zeros((36, 2), np.int64))
    windows = make_windows(enc, cls_id=1, sep_id=2, max_len=10, stride=6)
    assert [len(w.ids) for w in windows] == [10, 10, 10, 10, 10, 8]
    batches = uniform_batches(windows, 4)
    assert [len(b) for b in batches] == [4, 1, 1]  # the short last window alone: no padding
    assert [w for b in batches for w in b] == windows
    assert all(len({len(w.ids) for w in b}) == 1 for b in batches)
    assert [len(b) for b in uniform_batches(windows, 1)] == [1] * 6
    assert uniform_batches([], 4) == []


def test_run_unpadded_runs_padded_rows_on_their_own_tokens() -> None:
    calls: list[tuple[int, ...]] = []

    def run(ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        calls.append(ids.shape)
        assert mask.all()  # never sees padding
        # each token's output depends on the whole row, as attention's does
        return [(ids + ids.sum(axis=1, keepdims=True))[..., None].astype(np.float32)]

    ids = np.array([[1, 2, 3], [4, 5, 0]], np.int64)
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.int64)
    (out,) = run_unpadded(run, ids, mask)
    assert calls == [(1, 3), (1, 2)]
    assert out[..., 0].tolist() == [[7, 8, 9], [13, 14, 0]]
    calls.clear()
    (full,) = run_unpadded(run, ids[:1], mask[:1])
    assert calls == [(1, 3)] and full.shape == (1, 3, 1)
    with pytest.raises(ValueError, match="padding on the right"):
        run_unpadded(run, ids, np.array([[1, 1, 1], [0, 1, 1]], np.int64))


def test_stitch_averages_overlapping_windows() -> None:
    windows = [Window(ids=np.zeros(5), first=0, n=3), Window(ids=np.zeros(5), first=2, n=3)]
    a = np.zeros((5, 1))
    a[1:4] = 1.0
    b = np.zeros((5, 1))
    probs = stitch(windows, [a, b], 5)
    assert probs[:2, 0].tolist() == [1.0, 1.0]
    assert 0.0 < probs[2, 0] < 1.0  # token 2 is seen by both windows
    assert probs[3:, 0].tolist() == [0.0, 0.0]


def test_runs_become_word_snapped_spans() -> None:
    text = "They call them takfiri terrorists and worse."
    enc = _enc(text)
    prob = np.array([0.1, 0.1, 0.1, 0.9, 0.8, 0.2, 0.1])
    spans = runs_to_spans(text, enc, prob, 0.5)
    assert [(text[s:e], round(p, 2)) for s, e, p in spans] == [("takfiri terrorists", 0.85)]


def test_gaps_are_bridged_only_up_to_max_gap() -> None:
    text = "a bb cc dd ee ff"
    enc = _enc(text)
    prob = np.array([0.9, 0.9, 0.1, 0.9, 0.1, 0.1])
    assert len(runs_to_spans(text, enc, prob, 0.5, min_chars=1)) == 2
    joined = runs_to_spans(text, enc, prob, 0.5, min_chars=1, max_gap=1)
    assert [text[s:e] for s, e, _ in joined] == ["a bb cc dd"]


def test_extend_grows_runs_over_weaker_neighbours_but_not_into_the_next_run() -> None:
    text = "a bb cc dd ee ff gg"
    enc = _enc(text)
    prob = np.array([0.1, 0.35, 0.9, 0.35, 0.35, 0.9, 0.1])
    plain = runs_to_spans(text, enc, prob, 0.5, min_chars=1)
    assert [text[s:e] for s, e, _ in plain] == ["cc", "ff"]
    grown = runs_to_spans(text, enc, prob, 0.5, min_chars=1, extend=0.3)
    assert [text[s:e] for s, e, _ in grown] == ["bb cc dd ee", "ff"]
    assert runs_to_spans(text, enc, prob, 0.5, min_chars=1, extend=0.5) == plain


def test_spans_stop_at_blank_lines_and_drop_stray_punctuation() -> None:
    text = "Our Heroes\n\n, united and proud! More"
    assert [text[s:e] for s, e in split_paragraphs(text, 0, len(text))] == [
        "Our Heroes",
        "united and proud! More",
    ]


def test_any_blank_line_is_a_paragraph_break_but_crlf_is_one_line() -> None:
    breaks = ("\r\r", "\r\n\r\n", "\n\u2003\n", "\n\u200b\n", "\u2029", "\u2028\u2028", "\x0c\x0c")
    breaks += ("\n\u200e\n", "\n \u00ad \n", "\n\n\n\n")
    for brk in breaks:
        text = f"Our Heroes{brk}Crush them"
        pieces = [text[s:e] for s, e in split_paragraphs(text, 0, len(text))]
        assert pieces == ["Our Heroes", "Crush them"], repr(brk)
    for one in ("\r\n", "\r", "\n", " \n "):
        text = f"Our Heroes{one}Crush them"
        assert split_paragraphs(text, 0, len(text)) == [(0, len(text))], repr(one)


def test_span_edges_drop_every_kind_of_blank() -> None:
    for blank in ("\u2003", "\u3000", "\u200b", "\u202f", "\x0c", "\ufeff", "\u00a0"):
        text = f"{blank}takfiri terrorists{blank}"
        assert [text[s:e] for s, e in split_paragraphs(text, 0, len(text))] == [
            "takfiri terrorists"
        ], repr(blank)


def test_combining_marks_belong_to_their_word() -> None:
    text = "they re\u0301d-handed je\u0301opardize it"  # accents stored apart (NFD)
    start = text.index("je")
    assert text[slice(*snap_to_words(text, start + 3, start + 5))] == "je\u0301opardize"
    end = text.index(" it")
    assert snap_to_words(text, end - 3, end - 1)[1] == end  # not cut before a final mark
    soft = "the propa\u00adganda war"  # a soft hyphen (scraped HTML) is inside its word
    assert soft[slice(*snap_to_words(soft, 4, 6))] == "propa\u00adganda"
    for sep in ("\u200b", "\u2060", "\ufeff", "\u200e"):  # these separate words
        text = f"thugs{sep}who lie"
        assert snap_to_words(text, 0, 5) == (0, 5), repr(sep)
    word = "handed\u0301"
    text = f"a {word} b"
    assert text[slice(*snap_to_words(text, 2, 2 + len(word) - 1))] == word


def test_overlapping_runs_merge_into_one_span() -> None:
    text = "a deep dive and I applaud"
    # tokens cut inside "applaud": two runs that both snap out to the whole word
    offsets = [(0, 1), (2, 6), (7, 11), (12, 15), (16, 17), (18, 21), (21, 23), (23, 25)]
    enc = Encoded(ids=np.arange(8) + 10, offsets=np.array(offsets))
    prob = np.array([0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9])
    spans = runs_to_spans(text, enc, prob, 0.5, min_chars=1)
    assert [text[s:e] for s, e, _ in spans] == ["deep dive and I applaud"]
    assert abs(spans[0][2] - 0.9) < 1e-6
    touching = runs_to_spans(text, _enc(text), np.array([0.9, 0.9, 0.1, 0.9, 0.9, 0.1]), 0.5)
    assert [text[s:e] for s, e, _ in touching] == ["a deep", "and I"]


def test_snap_and_token_range() -> None:
    text = "the savaged man"
    assert snap_to_words(text, 6, 9) == (4, 11)
    enc = _enc(text)
    assert span_token_range(enc, 4, 11) == (1, 2)
    assert span_token_range(enc, 0, 15) == (0, 3)


def test_split_sentences_cuts_at_sentence_ends_but_not_abbreviations() -> None:
    from unspin.decode import split_sentences

    text = "our leaders. The blood of our martyrs! Mr. Haddad and the U.S. Army said so."
    pieces = [text[s:e] for s, e in split_sentences(text, 0, len(text))]
    assert pieces == [
        "our leaders",
        "The blood of our martyrs",
        "Mr. Haddad and the U.S. Army said so",  # the text's end: marks out, as before "The"
    ]
    assert split_sentences("Blame the U.S. \n", 0, 14) == [(0, 14)]  # an abbreviation stays
    assert split_sentences("Traitors!  ", 0, 9) == [(0, 8)]
    assert split_sentences("Traitors. Next", 0, 9) == [(0, 8)]  # a span ending at the marks
    assert split_sentences("So. Traitors. next", 4, 13) == [(4, 13)]  # no sentence follows


def test_runs_to_spans_splits_sentences_only_when_asked() -> None:
    import numpy as np

    from unspin.decode import runs_to_spans
    from unspin.segment import Encoded

    text = "We won. They lost badly"
    words = [(0, 2), (3, 6), (6, 7), (8, 12), (13, 17), (18, 23)]
    enc = Encoded(ids=np.arange(len(words)), offsets=np.array(words))
    prob = np.full(len(words), 0.9)
    whole = runs_to_spans(text, enc, prob, 0.5)
    cut = runs_to_spans(text, enc, prob, 0.5, sentences=True)
    assert [(s, e) for s, e, _ in whole] == [(0, 23)]
    assert [text[s:e] for s, e, _ in cut] == ["We won", "They lost badly"]


def test_split_sentences_handles_dates_companies_times_marks_and_quotes() -> None:
    from unspin.decode import split_sentences

    for text, want in [
        ("hit on Sept. 11 by them. Then", ["hit on Sept. 11 by them", "Then"]),
        ("Apple Inc. CEO left at 5 p.m. Monday", ["Apple Inc. CEO left at 5 p.m. Monday"]),
        ("pure evil!!! The end", ["pure evil", "The end"]),
        ('he said "We won." They lost', ['he said "We won."', "They lost"]),
    ]:
        assert [text[s:e] for s, e in split_sentences(text, 0, len(text))] == want


def test_only_function_words() -> None:
    from unspin.decode import only_function_words

    assert only_function_words("will") and only_function_words("they are, of all")
    assert not only_function_words("savages") and not only_function_words("they are thugs")
    assert not only_function_words("Will Smith's")
    # contractions of function words are function words, in either apostrophe
    for text in ("they're", "It\u2019s", "don't", "won't", "we'll", "I'm", "isn't it"):
        assert only_function_words(text), text
    for text in ("Trump's", "o'clock", "they're thugs", "ain't"):
        assert not only_function_words(text), text


def test_occurrences_counts_the_span_text_case_insensitively() -> None:
    from unspin.decode import occurrences

    text = "Treason! They call it treason, “TREASON”. No."
    assert occurrences(text, 0, 8) == 3  # "Treason!" -> key "treason"
    assert occurrences(text, 31, 40) == 3  # the quoted one, quotes stripped
    assert occurrences(text, 42, 45) == 1  # "No." -> "no": under 3 characters


def test_complete_phrase_moves_a_dangling_end_to_the_next_content_word() -> None:
    from unspin.decode import complete_phrase

    def grown(text: str, span: str, max_words: int = 3) -> str:
        s = text.index(span)
        return text[s : complete_phrase(text, s, s + len(span), max_words)]

    text = "We hail the great victory of our people, and the brave US-backed men of\nthe army."
    assert grown(text, "great victory of our") == "great victory of our people"
    assert grown(text, "great victory") == "great victory"  # ends on a content word
    assert grown(text, "people, and", max_words=1) == "people, and the"  # at most one word
    assert grown(text, "people, and") == "people, and the brave"  # "the" is one more
    assert grown(text, "and the") == "and the brave"
    assert grown(text, "brave US-backed men of") == "brave US-backed men of"  # line break
    assert grown("They are of the", "They are of") == "They are of the"  # text ends
    assert grown("Shame on them, on", "Shame on") == "Shame on them"
    assert grown("Shame on, them", "Shame on") == "Shame on"  # punctuation stops it


def test_occurrences_count_whole_words_and_not_function_words() -> None:
    from unspin.decode import occurrences

    text = "This war is a crime. The award went to the software team. A warning. War!"
    assert occurrences(text, 5, 8) == 2  # "war", "War": not "award", "software", "warning"
    the = text.index("the")
    assert occurrences(text, the, the + 3) == 1  # a function word never counts as repeated


def test_completion_stops_at_tokens_quotes_and_clause_ends() -> None:
    from unspin.decode import complete_phrase

    def grown(text: str, span: str) -> str:
        s = text.index(span)
        return text[s : complete_phrase(text, s, s + len(span))]

    assert grown("sanctions imposed by the U.S. government", "imposed by the") == (
        "imposed by the U.S."
    )
    assert grown("they sent over 1,000 troops", "sent over") == "sent over 1,000"
    assert grown("attacks of 9/11 were", "attacks of") == "attacks of 9/11"
    assert grown("smash any US/NATO/EU attack", "smash any") == "smash any US/NATO/EU"
    assert grown("behavior of the US in their country", "behavior of the") == (
        "behavior of the US"  # the country, not "us"
    )
    assert grown('proud of our "heroes"', "proud of our") == "proud of our"  # a quote stops it
    assert grown("victory of our people. And", "victory of our") == "victory of our people"


def test_completed_pieces_that_meet_merge_into_one_span() -> None:
    import numpy as np

    text = "They betrayed our great nation today."
    enc = _enc(text)
    prob = np.zeros(len(enc.ids))
    words = [text[a:b] for a, b in enc.offsets]
    prob[words.index("our")] = prob[words.index("nation")] = 0.9
    spans = runs_to_spans(text, enc, prob, 0.5, complete=3)
    assert [text[s:e] for s, e, _ in spans] == ["our great nation"]
    apart = runs_to_spans(text, enc, prob, 0.5)  # without completion: two runs
    assert [text[s:e] for s, e, _ in apart] == ["our", "nation"]


def test_stray_quotes_leave_span_edges_and_paragraph_ends_end_sentences() -> None:
    from unspin.decode import split_sentences

    def cut(text: str, end: int | None = None) -> list[str]:
        return [text[s:e] for s, e in split_sentences(text, 0, len(text) if end is None else end)]

    assert cut("a self-described “") == ["a self-described"]
    assert cut("BANKRUPT EGO MANIAC'") == ["BANKRUPT EGO MANIAC"]
    assert cut("“Crush them”") == ["“Crush them”"]
    assert cut("What a disgrace!\n\nthe end", 16) == ["What a disgrace"]
    assert cut("What a disgrace! the end", 16) == ["What a disgrace!"]  # no sentence follows


def test_a_quotation_cut_at_its_end_is_not_merged_into_the_next_sentence() -> None:
    from unspin.decode import _merge_overlaps, split_sentences

    text = 'He said it. "Our glorious army will crush the traitors." The end came.'
    start, end = text.index('"Our'), text.index("came") + 4
    pieces = split_sentences(text, start, end)
    assert [text[s:e] for s, e in pieces] == [
        '"Our glorious army will crush the traitors."',  # the quote's own marks stay in
        "The end came",
    ]
    merged = _merge_overlaps([(s, e, 0.5) for s, e in pieces], text)
    assert [(s, e) for s, e, _ in merged] == pieces  # apart by a space, yet two sentences
    # spans apart by a space inside one sentence still join (phrase completion's case)
    text2 = "our great nation"
    joined = _merge_overlaps([(0, 9, 0.4), (10, 16, 0.6)], text2)
    assert [(s, e) for s, e, _ in joined] == [(0, 16)]


def test_an_ellipsis_ends_a_sentence_and_stays_out_of_spans() -> None:
    from unspin.decode import complete_phrase, split_sentences

    text = "It’s a shame that the elite won’t listen… Nobody cares. The vote"
    pieces = split_sentences(text, 0, text.index("cares") + 5)
    assert [text[s:e] for s, e in pieces] == [
        "It’s a shame that the elite won’t listen",
        "Nobody cares",
    ]
    # a span that stops inside "...": the dots it holds go too
    text = "They won’t listen... Nobody cares."
    start, end = text.index("won"), text.index("..") + 2
    assert [text[s:e] for s, e in split_sentences(text, start, end)] == ["won’t listen"]
    # phrase completion takes the word, not the marks after it
    for marks in ("…", "...", "."):
        text = f"the elite won’t listen{marks} Nobody"
        assert text[: complete_phrase(text, 0, text.index("won’t") + 5)] == "the elite won’t listen"


def test_repetition_features_keep_offsets_when_lower_casing_lengthens_the_text() -> None:
    from unspin.decode import repetition_features

    tail = " vile betrayal of the nation"
    for head in ("I" * 12, "\u0130" * 12):  # "İ".lower() is two code points
        text = head + tail
        start = text.index("vile")
        feats = repetition_features(text, start, start + len("vile betrayal"))
        assert feats[3] == 0.0, head  # neither word recurs elsewhere in the text


def test_abbreviations_after_a_long_run_of_dots_read_as_before() -> None:
    from unspin.sentences import split_sentences

    # the look-back for the word before a full stop is bounded, except where a run of letters
    # and dots fills it: there it reads as far back as the run goes, as it always did
    text = "Speakers: Jones" + "." * 70 + "Dr. Brown spoke. Then Lee" + "." * 70 + "B. Next one."
    assert len(split_sentences(text)) == 4
    assert split_sentences("Mr. Smith met Dr. Jones. They talked.") == [(0, 24), (25, 37)]
