#!/usr/bin/env python3
"""Hugging Face oracle for a tiny random Phi-3 model (Phi3ForCausalLM, CPU, fp32, eager attention).

Usage: python phi3_reference.py OUT_FOLDER TOKENIZER ORIGINAL_CONTEXT
Needs the oracle venv with torch and transformers: Scripts/setup.sh --torch

Builds a 3-layer Phi-3 (hidden 64, 4 query heads and 2 KV heads of width 16, fused qkv_proj and
gate_up_proj, partial_rotary_factor 0.75 so 12 of 16 dimensions rotate, LongRoPE with 6 short and 6
long factors, original_max_position_embeddings ORIGINAL_CONTEXT and max_position_embeddings 4x that, an
untied lm_head), fills every weight from a seeded NumPy RNG (matrices N(0, 0.2), embeddings N(0, 0.5),
norm weights 1 + N(0, 0.1)), saves OUT_FOLDER with save_pretrained (config.json + fp32
model.safetensors), and its tokenizer:
- TOKENIZER a tokenizer.json: copied with the tokenizer_config.json beside it, its class set to
  GPT2Tokenizer (the byte-level BPE that llama.cpp's Phi-3 converter reads as Phi-4's); vocab_size 4096;
- TOKENIZER a folder with sp.model and sp.json (Scripts/sentencepiece_vocabulary.py): Phi-3 mini's form,
  tokenizer.model and tokenizer.json with the added tokens <|endoftext|> (1000, special), <|user|>
  (1001, not special) and <|assistant|> (1002, special) listed in tokenizer.json, tokenizer_config.json
  (LlamaTokenizerFast) and added_tokens.json; vocab_size 1024, so 1003..1023 have no token.
Then it runs ids [5, 17, 300, 2048, 4095, 9, 9, 1000] (modulo vocab_size) and prints logits[:, ::97] of
all 8 positions, row-major, as space-separated repr(float) on one stdout line: with ORIGINAL_CONTEXT < 8
transformers rotates with the long factors, otherwise with the short ones. Everything else goes to stderr.
"""
import contextlib
import json
import os
import shutil
import sys

import numpy as np

from reference_common import check_saved, sampled_logits

SEED = 11
IDS = [5, 17, 300, 2048, 4095, 9, 9, 1000]
D, F, L, NH, NKV, HD = 64, 96, 3, 4, 2, 16
ADDED = [("<|endoftext|>", 1000, True), ("<|user|>", 1001, False), ("<|assistant|>", 1002, True)]
SHORT = [1.0, 1.05, 1.2, 1.6, 2.5, 4.0]
LONG = [1.0, 1.3, 2.0, 3.5, 6.0, 11.0]


def random_weights(V):
    rng = np.random.default_rng(SEED)
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (V, D)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, D),
         "lm_head.weight": rng.normal(0, 0.2, (V, D))}
    for i in range(L):
        p = f"model.layers.{i}."
        for norm in ["input_layernorm", "post_attention_layernorm"]:
            w[p + norm + ".weight"] = 1 + rng.normal(0, 0.1, D)
        w[p + "self_attn.qkv_proj.weight"] = rng.normal(0, 0.2, ((NH + 2 * NKV) * HD, D))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (D, NH * HD))
        w[p + "mlp.gate_up_proj.weight"] = rng.normal(0, 0.2, (2 * F, D))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (D, F))
    return {k: v.astype(np.float32) for k, v in w.items()}


def main():
    if len(sys.argv) != 4:
        print("usage: phi3_reference.py OUT_FOLDER TOKENIZER ORIGINAL_CONTEXT", file=sys.stderr)
        sys.exit(64)
    out, tokenizer, original = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sentencepiece = os.path.isdir(tokenizer)
    V = 1024 if sentencepiece else 4096

    import torch
    from transformers import Phi3Config, Phi3ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = Phi3Config(
        hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=NH, num_key_value_heads=NKV,
        vocab_size=V, rms_norm_eps=1e-5, max_position_embeddings=4 * original, original_max_position_embeddings=original,
        rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                         "short_factor": SHORT, "long_factor": LONG, "original_max_position_embeddings": original},
        sliding_window=None, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=None,
        dtype="float32", architectures=["Phi3ForCausalLM"], attn_implementation="eager")

    torch.manual_seed(SEED)
    model = Phi3ForCausalLM(config).to(torch.float32)
    weights = random_weights(V)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    if sentencepiece:
        shutil.copyfile(tokenizer + "/sp.model", out + "/tokenizer.model")
        with open(tokenizer + "/sp.json", encoding="utf-8") as f:
            tokenizer_json = json.load(f)
        for content, i, special in ADDED:
            tokenizer_json["added_tokens"].append({"id": i, "content": content, "single_word": False, "lstrip": False,
                                                   "rstrip": False, "normalized": False, "special": special})
        with open(out + "/tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tokenizer_json, f, ensure_ascii=False, indent=2)
        decoder = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
                   for c, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2)]}
        for content, i, special in ADDED:
            decoder[str(i)] = {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                               "single_word": False, "special": special}
        tokenizer_config = {"add_bos_token": False, "add_eos_token": False, "added_tokens_decoder": decoder,
                            "bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>",
                            "legacy": False, "model_max_length": 4 * original, "tokenizer_class": "LlamaTokenizerFast",
                            "clean_up_tokenization_spaces": False}
        with open(out + "/added_tokens.json", "w", encoding="utf-8") as f:
            json.dump({content: i for content, i, _ in ADDED}, f)
    else:
        with open(tokenizer, encoding="utf-8") as f:
            text = f.read()
        with open(out + "/tokenizer.json", "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(os.path.dirname(tokenizer), "tokenizer_config.json"), encoding="utf-8") as f:
            tokenizer_config = json.load(f)
        tokenizer_config["tokenizer_class"] = "GPT2Tokenizer"
    with open(out + "/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_config, f, indent=2)

    check_saved(out, weights)
    return sampled_logits(model, [i % V for i in IDS])


if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):
        line = main()
    print(line)
