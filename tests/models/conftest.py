"""Offline tokenizers for the tiny random models of the adapter tests.

The released pipelines ship T5 (sentencepiece), RoBERTa and CLIP (byte-level BPE) tokenizers that
are downloaded from the Hub; here we build real tokenizer classes from tiny vocabularies written
on the spot (no download, no sentencepiece): the T5 one as a ``tokenizers`` Unigram model wrapped
in ``T5TokenizerFast``, the BPE ones from ``vocab.json`` + an empty ``merges.txt`` (byte-level
tokens, one per character).
"""

from __future__ import annotations

import json

import pytest

WORDS = (
    "a an the of and with in on at slow fast sad happy calm loud soft piano guitar drums bass synth strings "
    "song music beat melody dog bark rain car engine bird water man woman speaks hammer wood techno jazz"
).split()


@pytest.fixture(scope="session")
def t5_tokenizer():
    """A ``T5TokenizerFast`` with 40 word pieces (ids 0 pad, 1 eos, 2 unk)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0, model_max_length=32
    )


def _byte_vocab(prefix: list[str], with_word_end: bool) -> dict[str, int]:
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(prefix)}
    for c in chars + ([c + "</w>" for c in chars] if with_word_end else []):
        vocab.setdefault(c, len(vocab))
    return vocab


@pytest.fixture(scope="session")
def roberta_tokenizer(tmp_path_factory):
    """A byte-level ``RobertaTokenizer`` (~260 ids; bos 0, pad 1, eos 2)."""
    from transformers import RobertaTokenizer

    d = tmp_path_factory.mktemp("roberta_tok")
    vocab = _byte_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], with_word_end=False)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), model_max_length=77)


@pytest.fixture(scope="session")
def clip_tokenizer(tmp_path_factory):
    """A byte-level ``CLIPTokenizer`` (~515 ids)."""
    from transformers import CLIPTokenizer

    d = tmp_path_factory.mktemp("clip_tok")
    vocab = _byte_vocab(["<|startoftext|>", "<|endoftext|>"], with_word_end=True)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), model_max_length=77, pad_token="<|endoftext|>")
