#!/usr/bin/env python3
"""Hugging Face oracle for a tiny random Qwen3 model (Qwen3ForCausalLM, CPU, fp32, eager attention).

Usage: python qwen3_reference.py OUT_FOLDER TOKENIZER_JSON
Needs the oracle venv with torch and transformers: Scripts/setup.sh --torch

Builds a 2-layer Qwen3 (hidden 64, 4 query heads and 2 KV heads of head_dim 32, so heads x head_dim =
128 != hidden 64 on purpose), fills every weight from a seeded NumPy RNG (matrices N(0, 0.2), embeddings
N(0, 0.5), norm weights 1 + N(0, 0.1), including the per-head q_norm / k_norm of shape [head_dim]), saves
OUT_FOLDER with save_pretrained (config.json + fp32 model.safetensors), copies TOKENIZER_JSON to
OUT_FOLDER/tokenizer.json, runs ids [5, 17, 300, 2048, 4095, 9, 9, 1000] and prints logits[:, ::97] of all
8 positions, row-major, as space-separated repr(float) on one stdout line. Everything else goes to stderr,
including the saved tensor names and shapes.
"""
import contextlib
import shutil
import sys

import numpy as np

from reference_common import check_saved, sampled_logits

SEED = 5
IDS = [5, 17, 300, 2048, 4095, 9, 9, 1000]
D, F, L, NH, NKV, HD, V = 64, 96, 2, 4, 2, 32, 4096


def random_weights():
    rng = np.random.default_rng(SEED)
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (V, D)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, D),
         "lm_head.weight": rng.normal(0, 0.2, (V, D))}
    for i in range(L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, D)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, D)
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.2, (NH * HD, D))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.2, (NKV * HD, D))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.2, (NKV * HD, D))
        w[p + "self_attn.q_norm.weight"] = 1 + rng.normal(0, 0.1, HD)
        w[p + "self_attn.k_norm.weight"] = 1 + rng.normal(0, 0.1, HD)
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (D, NH * HD))
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.2, (F, D))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.2, (F, D))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (D, F))
    return {k: v.astype(np.float32) for k, v in w.items()}


def main():
    if len(sys.argv) != 3:
        print("usage: qwen3_reference.py OUT_FOLDER TOKENIZER_JSON", file=sys.stderr)
        sys.exit(64)
    out, tokenizer_json = sys.argv[1], sys.argv[2]

    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = Qwen3Config(
        hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=NH, num_key_value_heads=NKV,
        head_dim=HD, vocab_size=V, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        max_position_embeddings=64, tie_word_embeddings=False, attention_bias=False, bos_token_id=0, eos_token_id=0,
        dtype="float32", architectures=["Qwen3ForCausalLM"], use_sliding_window=False, attn_implementation="eager")
    assert config.model_type == "qwen3"

    torch.manual_seed(SEED)
    model = Qwen3ForCausalLM(config).to(torch.float32)
    weights = random_weights()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(tokenizer_json, out + "/tokenizer.json")

    check_saved(out, weights)
    return sampled_logits(model, IDS)


if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):
        line = main()
    print(line)
