"""Mutation tests for the lesson 06 checks: the reference passes; the stub and plausible wrong versions fail."""
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlre_lab.checks.harness import CheckFailed, TaskNotImplemented
from mlre_lab.checks.tokenizer import (
    _reference_bpe_step,
    check_bpe_step,
    check_count_pairs,
    check_encode_word,
    check_fast_bpe,
    check_merge,
    check_tokenizer_property_test,
)
from mlre_lab.text.tokenizer import apply_merges, count_pairs, merge_pair, pretokenize, train_bpe


def stub(*args):
    raise NotImplementedError("write this function")


def assert_rejects(check, mutant, reason):
    with pytest.raises(CheckFailed, match=reason) as info:
        check(mutant)
    assert not isinstance(info.value, TaskNotImplemented)


@pytest.mark.parametrize("check, reference", [(check_count_pairs, count_pairs), (check_merge, merge_pair),
                                              (check_bpe_step, _reference_bpe_step),
                                              (check_encode_word, apply_merges)])
def test_reference_passes_and_stub_is_not_done(capsys, check, reference):
    check(reference)
    assert capsys.readouterr().out.startswith(f"PASS {check.__name__}:")
    with pytest.raises(TaskNotImplemented, match="not implemented yet"):
        check(stub)


# ---- count_pairs ---------------------------------------------------------------------------------------------------

def pairs_in_chunks_of_two(ids):  # "aaa" -> {(a, a): 1}: misses the pairs that straddle chunks
    return dict(Counter(zip(ids[::2], ids[1::2])))


def each_pair_once(ids):  # a set, not a count
    return {pair: 1 for pair in zip(ids, ids[1:])}


def misses_last_pair(ids):  # off by one
    return dict(Counter(zip(ids, ids[1:-1])))


def no_overlap_counting(ids):  # skips ahead after a repeated pair, as if merging
    counts, i = Counter(), 0
    while i < len(ids) - 1:
        counts[ids[i], ids[i + 1]] += 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return dict(counts)


@pytest.mark.parametrize("mutant, reason", [
    (pairs_in_chunks_of_two, "'ab'|'aaa'"), (each_pair_once, "'aaa': overlapping pairs"),
    (misses_last_pair, "'ab'.*is missing"), (no_overlap_counting, "'aaa': overlapping pairs.*has 1, expected 2"),
])
def test_count_pairs_mutants(mutant, reason):
    assert_rejects(check_count_pairs, mutant, reason)


# ---- merge ---------------------------------------------------------------------------------------------------------

def right_to_left(ids, pair, new_id):
    return merge_pair(ids[::-1], pair[::-1], new_id)[::-1]


def overlapping(ids, pair, new_id):  # replaces at every position where the pair starts
    out = [new_id if (x, y) == tuple(pair) else x for x, y in zip(ids, ids[1:])]
    return out + ids[-1:] if not ids or (ids[-2:] != list(pair)) else out


def first_occurrence_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return ids


def drops_last_id(ids, pair, new_id):  # loop stops one early
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@pytest.mark.parametrize("mutant, reason", [
    (right_to_left, "'aaa', merging"), (overlapping, "'aaa', merging"), (first_occurrence_only, "'aaaa'"),
    (drops_last_id, "'aaa', merging .* returned \\[256\\]"),
])
def test_merge_mutants(mutant, reason):
    assert_rejects(check_merge, mutant, reason)


# ---- bpe_step ------------------------------------------------------------------------------------------------------

def _counts(words, weighted=True):
    counts = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n if weighted else 1
    return counts


def _merged(words, best):
    return best, {tuple(merge_pair(list(w), best, best[0] + best[1])): n for w, n in words.items()}


def first_pair_seen(words):  # "merging by first occurrence instead of frequency"
    return _merged(words, next(iter(_counts(words))))


def ties_by_first_occurrence(words):
    counts = _counts(words)
    return _merged(words, max(counts, key=counts.get))


def ties_by_smallest(words):
    counts = _counts(words)
    return _merged(words, min(counts, key=lambda p: (-counts[p], p)))


def ignores_word_counts(words):
    counts = _counts(words, weighted=False)
    return _merged(words, max(counts, key=lambda p: (counts[p], p)))


def forgets_to_merge(words):
    return _reference_bpe_step(words)[0], dict(words)


@pytest.mark.parametrize("mutant, reason", [
    (first_pair_seen, "a tie"), (ties_by_first_occurrence, "a tie"), (ties_by_smallest, "a tie"),
    (ignores_word_counts, "counts matter"), (forgets_to_merge, "new words after merging"),
])
def test_bpe_step_mutants(mutant, reason):
    assert_rejects(check_bpe_step, mutant, reason)


# ---- encode_word ---------------------------------------------------------------------------------------------------

def _bytes(word):
    return [word[i:i + 1] for i in range(len(word))]


def leftmost_first(word, ranks):  # merges the first mergeable pair in the word, ignoring rank
    parts = _bytes(word)
    while True:
        i = next((i for i in range(len(parts) - 1) if (parts[i], parts[i + 1]) in ranks), None)
        if i is None:
            return parts
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def latest_merge_first(word, ranks):
    parts = _bytes(word)
    while len(parts) > 1:
        candidates = [p for p in zip(parts, parts[1:]) if p in ranks]
        if not candidates:
            break
        best = max(candidates, key=ranks.get)
        parts = merge_pair(parts, best, best[0] + best[1])
    return parts


def single_pass(word, ranks):  # applies only the best merge, once
    parts = _bytes(word)
    candidates = [p for p in zip(parts, parts[1:]) if p in ranks]
    if candidates:
        best = min(candidates, key=ranks.get)
        parts = merge_pair(parts, best, best[0] + best[1])
    return parts


def skips_first_byte(word, ranks):  # off by one on byte offsets
    return apply_merges(word[1:], ranks)


@pytest.mark.parametrize("mutant, reason", [
    (leftmost_first, "rank beats position"), (latest_merge_first, "rank beats position"),
    (single_pass, "merges of merges"), (skips_first_byte, "rank beats position"),
])
def test_encode_word_mutants(mutant, reason):
    assert_rejects(check_encode_word, mutant, reason)


# ---- a fast trainer --------------------------------------------------------------------------------------------------
def fast_check(fn):
    "check_fast_bpe with a smaller speed corpus: the suite times 30,000 characters, learners 130,000."
    return check_fast_bpe(fn, corpus_chars=30_000, speed_vocab=500)


def merges_reference(text, vocab_size):
    return train_bpe(text, vocab_size)[1]


def merges_recounting(text, vocab_size, smallest_wins=False):  # recounts every pair after each merge: right, slow
    words = Counter(tuple(bytes([b]) for b in w.encode()) for w in pretokenize(text))
    merges = []
    for _ in range(vocab_size - 256):
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        if not counts:
            break
        tie = (lambda p: tuple(-b for b in p[0] + p[1])) if smallest_wins else (lambda p: p)
        best = max(counts, key=lambda p: (counts[p], tie(p)))
        merges.append(best)
        words = Counter({tuple(merge_pair(list(w), best, best[0] + best[1])): n for w, n in words.items()})
    return merges


def merges_tie_to_smallest(text, vocab_size):  # ties to the smallest pair
    return merges_recounting(text, vocab_size, smallest_wins=True)


def merges_across_pretokens(text, vocab_size):  # no pre-tokenization: merges cross word boundaries
    return train_bpe(text.replace(" ", "\u2581"), vocab_size)[1] if " " in text else train_bpe(text, vocab_size)[1]


def merges_ignoring_counts(text, vocab_size):  # each distinct pre-token counted once
    return train_bpe(" ".join(dict.fromkeys(pretokenize(text))), vocab_size)[1]


def test_fast_bpe_reference_passes_and_stub_is_not_done(capsys):
    fast_check(merges_reference)
    assert capsys.readouterr().out.startswith("PASS check_fast_bpe:")
    with pytest.raises(TaskNotImplemented):
        fast_check(stub)


@pytest.mark.parametrize("mutant, reason", [(merges_tie_to_smallest, "tie"), (merges_across_pretokens, "merge"),
                                            (merges_ignoring_counts, "merge"),
                                            (merges_recounting, "target is at most")])
def test_fast_bpe_rejects(mutant, reason):
    assert_rejects(fast_check, mutant, reason)


# ---- a property test -------------------------------------------------------------------------------------------------
def the_three_promises(tokenizer, text):
    ids = tokenizer.encode(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text
    assert tokenizer.encode(text) == ids


def property_reference(tokenizer):  # random text and text made of the tokenizer's own tokens (merges apply to it)
    own_tokens = st.lists(st.integers(0, tokenizer.vocab_size - 1)).map(tokenizer.decode)

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.text() | own_tokens)
    @example("")  # the edges, tried on every run before the search
    @example("  spaces in front, a newline after\n")
    @example("naïve café, 日本語, 🙂")
    def promises(text):
        the_three_promises(tokenizer, text)
    promises()


def property_ascii_only(tokenizer):  # never tries non-ASCII text: misses the token-by-token decoder
    @settings(max_examples=100, deadline=None, database=None)
    @given(st.text(alphabet=st.characters(max_codepoint=127)))
    def promises(text):
        the_three_promises(tokenizer, text)
    promises()


def property_round_trip_only(tokenizer):  # misses ids out of range and unstable encodings
    @settings(max_examples=100, deadline=None, database=None)
    @given(st.text())
    def promises(text):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    promises()


def property_fixed_examples(tokenizer):  # a unit test: the examples its author thought of
    for text in ["hello world", "def f(x):\n    return x"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def property_too_strict(tokenizer):  # demands one token per character: fails healthy tokenizers
    @settings(max_examples=50, deadline=None, database=None)
    @given(st.text(min_size=1))
    def promises(text):
        assert len(tokenizer.encode(text)) == len(text.encode())
    promises()


def test_property_test_reference_passes_and_stub_is_not_done(capsys):
    check_tokenizer_property_test(property_reference)
    assert capsys.readouterr().out.startswith("PASS check_tokenizer_property_test:")
    with pytest.raises(TaskNotImplemented):
        check_tokenizer_property_test(stub)


@pytest.mark.parametrize("mutant, reason", [(property_ascii_only, "passed a tokenizer that decodes each token"),
                                            (property_round_trip_only, "passed a tokenizer whose ids"),
                                            (property_fixed_examples, "passed"),
                                            (property_too_strict, "no bug")])
def test_property_test_rejects(mutant, reason):
    assert_rejects(check_tokenizer_property_test, mutant, reason)
