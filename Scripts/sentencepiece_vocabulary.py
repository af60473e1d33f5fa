#!/usr/bin/env python3
"""A Llama 2 style SentencePiece vocabulary for tests: ROOT/sp.model and ROOT/sp.json.

Usage: python sentencepiece_vocabulary.py ROOT CORPUS
Needs the oracle venv with sentencepiece, tokenizers and transformers: Scripts/setup.sh --torch

Trains a SentencePiece BPE model (1000 pieces, byte fallback, digits split, <unk> <s> </s> at 0, 1, 2)
on CORPUS with one thread (the same pieces on every run) into ROOT/sp.model, and writes the
tokenizer.json that transformers' SentencePieceExtractor makes from it in Llama 2's form (Prepend and
Replace normalizer, byte-fallback decoder, "<s> $A" template) to ROOT/sp.json.
"""
import sys

import sentencepiece as spm
import transformers.convert_slow_tokenizer as convert
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: sentencepiece_vocabulary.py ROOT CORPUS")
    root, corpus = sys.argv[1], sys.argv[2]
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=root + "/sp", model_type="bpe", vocab_size=1000, byte_fallback=True,
        character_coverage=0.995, split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=100000,
        minloglevel=2, num_threads=1)
    r = convert.SentencePieceExtractor(root + "/sp.model").extract(models.BPE)
    vocab = r["vocab"] if isinstance(r["vocab"], dict) else {p: i for i, (p, _) in enumerate(r["vocab"])}
    t = Tokenizer(models.BPE(vocab=vocab, merges=r["merges"], unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.add_special_tokens([AddedToken(x, normalized=False, special=True) for x in ["<unk>", "<s>", "</s>"]])
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    t.save(root + "/sp.json")


if __name__ == "__main__":
    main()
