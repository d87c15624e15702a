"""Tokenizers: round trips on arbitrary Unicode, streaming equals whole-text encoding, GPT-2's file format and its
encoding algorithm, and clear errors on bad input."""
import json
from collections import Counter

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from mlre_lab.checks.tokenizer import _reference_bpe_step
from mlre_lab.text.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    TokenizerError,
    bytes_to_unicode,
    pretokenize,
    python_docs_text,
    train_bpe,
)

SPECIALS = ["<|endoftext|>", "<|end|>", "<|end|><|end|>"]  # overlapping on purpose: the longest must win
TOK = BPETokenizer.train(python_docs_text(20_000), vocab_size=400, special_tokens=SPECIALS)

# Text mixing anything Unicode with special tokens and the characters where pre-tokens meet.
texts = st.lists(st.one_of(st.text(), st.sampled_from(SPECIALS), st.sampled_from([" ", "\n", "'", "'ll", "<|"])),
                 max_size=12).map("".join)


@settings(max_examples=150, deadline=None)
@given(texts)
def test_bpe_round_trip(text):
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    assert all(0 <= i < TOK.vocab_size for i in ids)


@settings(max_examples=150, deadline=None)
@given(texts, st.lists(st.integers(0, 200), max_size=6))
def test_encode_iterable_equals_encode(text, cuts):
    cuts = sorted({c % (len(text) + 1) for c in cuts})
    chunks = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])]
    assert list(TOK.encode_iterable(chunks)) == TOK.encode(text)


def test_special_tokens_are_single_ids_and_never_merged():
    ids = TOK.encode("a<|end|><|end|>b<|end|>")
    assert ids.count(TOK.special_ids["<|end|><|end|>"]) == 1 and ids.count(TOK.special_ids["<|end|>"]) == 1
    vocab, merges = train_bpe("x<|eot|>y " * 50, 300, ["<|eot|>"])
    assert not any(b"<" in a + b and b"|" in a + b for a, b in merges)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.text())
def test_char_round_trip_and_unknowns(train_text, text):
    tok = CharTokenizer.train(train_text, special_tokens=["<|endoftext|>"], unk_token="<unk>")
    known = "".join(c for c in text if c in tok.stoi)
    assert tok.decode(tok.encode(known + "<|endoftext|>")) == known + "<|endoftext|>"
    strict = CharTokenizer.train(train_text)
    if any(c not in strict.stoi for c in text):
        with pytest.raises(TokenizerError, match="not in the vocabulary"):
            strict.encode(text)


def test_char_save_load(tmp_path):
    tok = CharTokenizer.train("hello", special_tokens=["<|s|>"], unk_token="<unk>")
    tok.save(tmp_path / "t.json")
    assert CharTokenizer.load(tmp_path / "t.json").itos == tok.itos
    (tmp_path / "t.json").write_text(json.dumps({"chars": ["a", "a"], "special_tokens": [], "unk_token": None}))
    with pytest.raises(TokenizerError, match="t.json: chars lists the same character twice"):
        CharTokenizer.load(tmp_path / "t.json")
    (tmp_path / "t.json").write_text(json.dumps({"chars": []}))
    with pytest.raises(TokenizerError, match="expected a JSON object with keys"):
        CharTokenizer.load(tmp_path / "t.json")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="aab bc'\n1é", max_size=60), st.integers(0, 30))
def test_incremental_training_equals_the_textbook_loop(text, n_merges):
    # The textbook loop recounts every pair of every word for each merge; train_bpe only updates what changed.
    words = dict(Counter(tuple(bytes([b]) for b in w.encode()) for w in pretokenize(text)))
    expected = []
    while len(expected) < n_merges and any(len(w) > 1 for w in words):
        pair, words = _reference_bpe_step(words)
        expected.append(pair)
    assert train_bpe(text, 256 + n_merges)[1] == expected


def test_training_is_deterministic_and_sized():
    text = python_docs_text(5_000)
    assert train_bpe(text, 300, ["<|a|>"]) == train_bpe(text, 300, ["<|a|>"])
    vocab, merges = train_bpe(text, 300, ["<|a|>"])
    assert len(vocab) == 300 and len(merges) == 43 and vocab[299] == b"<|a|>"


# ---- GPT-2's format and algorithm -------------------------------------------------------------------------------
# An independent transcription of OpenAI's gpt-2/src/encoder.py (its regex, its bpe() loop, its file reading), run on
# hand-made files, is the reference our loader and encoder must agree with.

GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def gpt2_encode(text, encoder, bpe_merges):
    byte_encoder = bytes_to_unicode()
    ranks = dict(zip(bpe_merges, range(len(bpe_merges))))

    def bpe(token):
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
            if bigram not in ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        return " ".join(word)

    out = []
    for token in GPT2_PAT.findall(text):
        token = "".join(byte_encoder[b] for b in token.encode("utf-8"))
        out.extend(encoder[t] for t in bpe(token).split(" "))
    return out


HAND_MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "Ġa n", "Ġan d", "o u", "Ġ w", "Ġw o", "r l",
               "Ġwo rl", "Ġworl d", "' s", "1 2", "Ġ 1", "Ġ1 2", "l l", "e ll", "h ell", "l o", "Ġ Ġ", "Ċ Ċ"]


def write_gpt2_files(directory):
    # GPT-2's layout: ids 0..255 are the bytes in bytes_to_unicode's order of *characters* (so "!" is 0), then one id
    # per merge in rank order, then <|endoftext|> last.
    first = [b for b in range(256) if bytes_to_unicode()[b] == chr(b)]
    order = first + [b for b in range(256) if b not in first]
    encoder = {bytes_to_unicode()[b]: i for i, b in enumerate(order)}
    for merge in HAND_MERGES:
        encoder[merge.replace(" ", "")] = len(encoder)
    encoder["<|endoftext|>"] = len(encoder)
    (directory / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(HAND_MERGES) + "\n")
    return directory


@pytest.fixture
def gpt2_dir(tmp_path):
    return write_gpt2_files(tmp_path)


def read_gpt2(directory):
    encoder = json.loads((directory / "vocab.json").read_text())
    bpe_data = (directory / "merges.txt").read_text()
    return encoder, [tuple(m.split()) for m in bpe_data.split("\n")[1:-1]]


def test_loads_gpt2_files_and_tokenizes_as_gpt2(gpt2_dir):
    tok = BPETokenizer.load(gpt2_dir)
    encoder, merges = read_gpt2(gpt2_dir)
    assert tok.special_tokens == ["<|endoftext|>"] and tok.special_ids["<|endoftext|>"] == len(encoder) - 1
    text = "hello the world and 12 thinner, it's hell's 123\n\n  ouch  \t ünï 日本"
    assert tok.encode(text) == gpt2_encode(text, encoder, merges)
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|endoftext|>the") == [len(encoder) - 1, *gpt2_encode("the", encoder, merges)]


def test_gpt2_agreement_property(tmp_path):
    write_gpt2_files(tmp_path)
    tok = BPETokenizer.load(tmp_path)
    encoder, merges = read_gpt2(tmp_path)

    @settings(max_examples=150, deadline=None)
    @given(st.text(alphabet="theworlandu12'sl \n\té", max_size=40))
    def agrees(text):
        assert tok.encode(text) == gpt2_encode(text, encoder, merges)
    agrees()


def test_save_load_round_trip(tmp_path):
    TOK.save(tmp_path)
    again = BPETokenizer.load(tmp_path)
    assert again.special_tokens == sorted(SPECIALS, key=SPECIALS.index) and again.vocab == TOK.vocab
    text = python_docs_text(3_000) + "<|end|><|end|>"
    assert again.encode(text) == TOK.encode(text)


# ---- bad input ----------------------------------------------------------------------------------------------------

def test_decode_rejects_bad_ids():
    with pytest.raises(TokenizerError, match="token id 400 at position 1 is out of range"):
        TOK.decode([0, 400])
    with pytest.raises(TokenizerError, match="token id -1 at position 0"):
        TOK.decode([-1])
    with pytest.raises(TokenizerError, match="not an integer"):
        TOK.decode(["a"])


def test_bad_special_tokens():
    with pytest.raises(TokenizerError, match=r"special token\(s\) \['<\|x\|>'\] are not in the vocabulary"):
        BPETokenizer(TOK.vocab, TOK.merges, ["<|x|>"])
    with pytest.raises(TokenizerError, match="non-empty strings"):
        BPETokenizer.train("abc", 300, [""])
    with pytest.raises(TokenizerError, match="listed more than once"):
        CharTokenizer.train("abc", ["<s>", "<s>"])
    with pytest.raises(TokenizerError, match="lone surrogate"):
        TOK.encode("a\ud800b")


@pytest.mark.parametrize("name, content, message", [
    ("vocab.json", "{\"a\": 0,\n \"b\" 1}", r"vocab.json, line 2, column 6: not valid JSON"),
    ("vocab.json", "[1, 2]", r"vocab.json: expected a JSON object mapping tokens to ids, found a list"),
    ("vocab.json", '{"a": 0, "a": 1}', r"vocab.json: token 'a' appears twice"),
    ("vocab.json", '{"a": 0, "b": 0}', r"vocab.json: id 0 is given to two tokens, 'a' and 'b'"),
    ("vocab.json", '{"a": "zero"}', r"vocab.json: token 'a' has id 'zero'"),
    ("vocab.json", '{"a b": 0}', r"vocab.json: token 'a b' contains ' ', which is not one of the 256"),
    ("vocab.json", '{"a": 0}', r"merges.txt, line 2: merge 'Ġ t' needs token 'Ġ', which is not in vocab.json"),
    ("merges.txt", "#version: 0.2\nĠ t\nh e x\n", r"merges.txt, line 3: expected two tokens separated by one space"),
    ("merges.txt", "#version: 0.2\nĠ t\nq zz\n", r"merges.txt, line 3: merge 'q zz' needs token 'zz'"),
    ("merges.txt", "#version: 0.2\nĠ  t\n", r"merges.txt, line 2: expected two tokens"),
])
def test_malformed_files_name_file_and_line(gpt2_dir, name, content, message):
    (gpt2_dir / name).write_text(content)
    with pytest.raises(TokenizerError, match=message):
        BPETokenizer.load(gpt2_dir)


def test_vocab_without_all_bytes(gpt2_dir):
    (gpt2_dir / "vocab.json").write_text('{"a": 0, "b": 1}')
    (gpt2_dir / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(TokenizerError, match=r"vocab.json and merges.txt: the vocabulary lacks 254 single-byte"):
        BPETokenizer.load(gpt2_dir)


def test_missing_file(tmp_path):
    with pytest.raises(TokenizerError, match="vocab.json: no such file"):
        BPETokenizer.load(tmp_path)
