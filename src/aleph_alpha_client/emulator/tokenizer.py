"""The emulator's deterministic, reversible tokenizer.

It is a byte-level BPE tokenizer, the same family as GPT-2's, small enough to be built at
import time:

* **Pre-tokenization** splits the text with an ASCII-only regular expression
  (:data:`SPLIT_PATTERN`: an optional space plus letters, or digits, or other symbols, or
  whitespace runs). The pattern uses explicit character classes only, so Python's ``re`` and
  the Oniguruma engine inside HuggingFace ``tokenizers`` split every string identically.
* Every piece is turned into its UTF-8 bytes, each byte written as one printable character
  (the usual byte-level alphabet: ``" "`` becomes ``"Ġ"``, ``"\\n"`` becomes ``"Ċ"``).
* **BPE merges** built from a fixed list of common words then join the characters: the lowest
  ranked adjacent pair is merged (all its occurrences, left to right) until no merge applies.

Token ids 0-255 are the single bytes (id == byte value); the merged tokens follow. Because every
byte has a token, :func:`decode` of :func:`encode` gives back any string exactly.

:func:`tokenizer_json` renders the same tokenizer as a HuggingFace ``tokenizer.json`` document,
which ``tokenizers.Tokenizer.from_str`` loads; its ``encode``/``decode`` agree with
:func:`encode`/:func:`decode` (tested).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from typing import Any

__all__ = [
    "SPLIT_PATTERN",
    "VOCAB_SIZE",
    "decode",
    "encode",
    "id_to_token",
    "token_bytes",
    "tokenizer_json",
]

_WS = "\\t\\n\\x0b\\x0c\\r "
#: The pre-tokenizer pattern (shared verbatim with the exported ``tokenizer.json``).
SPLIT_PATTERN = f" ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+"
_SPLIT_RE = re.compile(SPLIT_PATTERN)

_WORDS = """
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers him his how i if in into is it its itself just me more most my
no nor not now of off on once only or other our out over own same she should so some such than
that the their them then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yes hello hi thanks thank
please help today tell said say question answer world time year day good new first last long
great little right big high small large next early young important public bad able people
capital city country france paris spain madrid germany berlin italy rome europe weather
location temperature sunny cloudy rain offline aleph alpha emulator model models chat complete
completion token tokens text prompt request response user assistant system tool tools function
result returned called call embedding embeddings vector search document documents query data
test tests example python client server api json value name number string list true false null
stream streaming pizza cheese describe image picture fish aquarium nemo translate translation
hallo wie geht es dir der die das und ist ich nicht ein eine mit von zu den
""".split()


def _byte_alphabet() -> list[str]:
    """Map each byte value to one printable character (the standard byte-level alphabet)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


_BYTE_CHARS: list[str] = _byte_alphabet()
_CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(_BYTE_CHARS)}


def _to_byte_chars(piece: str) -> str:
    return "".join(_BYTE_CHARS[b] for b in piece.encode("utf-8"))


def _apply_merges(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair-merge ``word`` (byte-level characters) with the merge ranks ``ranks``."""
    parts = list(word)
    while len(parts) > 1:
        best_rank = -1
        best: tuple[str, str] | None = None
        for pair in itertools.pairwise(parts):
            rank = ranks.get(pair)
            if rank is not None and (best is None or rank < best_rank):
                best, best_rank = pair, rank
        if best is None:
            break
        merged: list[str] = []
        i = 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == best[0] and parts[i + 1] == best[1]:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


def _build() -> tuple[list[str], dict[str, int], list[tuple[str, str]]]:
    # Each word form gets merges that join its current segmentation left to right. Merges added
    # later rank higher, so they never change how an earlier word is merged: every listed
    # form ends up as exactly one token.
    vocab_list: list[str] = list(_BYTE_CHARS)
    vocab: dict[str, int] = {t: i for i, t in enumerate(vocab_list)}
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    forms: list[str] = []
    for word in _WORDS:
        for form in (word, word.capitalize()):
            for spaced in (" " + form, form):
                if spaced not in forms:
                    forms.append(spaced)
    for form in forms:
        chars = _to_byte_chars(form)
        parts = _apply_merges(chars, ranks)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            token = pair[0] + pair[1]
            if token not in vocab:
                vocab[token] = len(vocab_list)
                vocab_list.append(token)
            parts = _apply_merges(chars, ranks)
    return vocab_list, vocab, merges


_VOCAB_LIST, _VOCAB, _MERGES = _build()
_RANKS: dict[tuple[str, str], int] = {pair: rank for rank, pair in enumerate(_MERGES)}
#: Number of token ids (valid ids are ``0 .. VOCAB_SIZE - 1``).
VOCAB_SIZE = len(_VOCAB_LIST)
_TOKEN_BYTES: list[bytes] = [bytes(_CHAR_TO_BYTE[c] for c in t) for t in _VOCAB_LIST]


@functools.lru_cache(maxsize=65536)
def _piece_ids(piece: str) -> tuple[int, ...]:
    return tuple(_VOCAB[p] for p in _apply_merges(_to_byte_chars(piece), _RANKS))


def encode(text: str) -> list[int]:
    """Token ids of ``text``."""
    ids: list[int] = []
    for piece in _SPLIT_RE.findall(text):
        ids.extend(_piece_ids(piece))
    return ids


def id_to_token(token_id: int) -> str:
    """The token string of ``token_id`` (byte-level characters, e.g. ``"ĠHello"``)."""
    return _VOCAB_LIST[token_id]


def token_bytes(token_id: int) -> bytes:
    """The bytes that ``token_id`` stands for. Raises ``IndexError`` on bad ids."""
    if token_id < 0:
        raise IndexError(token_id)
    return _TOKEN_BYTES[token_id]


def decode(ids: list[int]) -> str:
    """The text of token ids (invalid UTF-8 becomes U+FFFD). Raises ``IndexError`` on bad ids."""
    return b"".join(token_bytes(i) for i in ids).decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=1)
def tokenizer_json() -> str:
    """The tokenizer as a HuggingFace ``tokenizer.json`` document."""
    document: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": SPLIT_PATTERN},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": False,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": _VOCAB,
            "merges": [f"{a} {b}" for a, b in _MERGES],
        },
    }
    return json.dumps(document, ensure_ascii=False)
