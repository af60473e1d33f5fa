#!/usr/bin/env python3
"""Hugging Face oracle for a tiny random Gemma 3 text model (Gemma3ForCausalLM, CPU, fp32, eager attention).

Usage: python gemma3_reference.py OUT_FOLDER TOKENIZER_JSON QUERY_PRE_ATTN_SCALAR [multimodal]
Needs the oracle venv with torch and transformers: Scripts/setup.sh --torch

Builds a 7-layer Gemma 3 (hidden 64, 4 query heads and 2 KV heads of head_dim 32, so heads x head_dim =
128 != hidden 64; sliding window 4 with transformers' default pattern of 6: layers 0-4 and 6 slide, layer 5
is global; rope theta 10000 for sliding layers, 1e6 with linear scaling x8 for global ones; tied
embeddings; query_pre_attn_scalar from the command line), fills every weight from a seeded NumPy RNG
(matrices N(0, 0.2), embeddings N(0, 0.5), norm weights N(0, 0.3): Gemma's RMSNorm multiplies by 1 + w),
saves OUT_FOLDER with save_pretrained (config.json + fp32 model.safetensors), copies TOKENIZER_JSON to
OUT_FOLDER/tokenizer.json (and the tokenizer_config.json beside it, so that AutoTokenizer, as llama.cpp's
converter calls it, takes the file as it is rather than Gemma's own tokenizer class), runs ids [5, 17, 300, 2048, 4095, 9, 9, 1000] and prints logits[:, ::97] of all
8 positions, row-major, as space-separated repr(float) on one stdout line. Everything else goes to stderr.
With "multimodal" the same text model is the language model of a Gemma3ForConditionalGeneration (model_type
gemma3, text_config, a 1-layer SigLIP vision tower and the projector initialized from torch's seeded RNG);
its tensors are saved under "language_model.model.", and the logits are of the text-only input.
"""
import contextlib
import os
import shutil
import sys

import numpy as np

from reference_common import check_saved, sampled_logits

SEED = 7
IDS = [5, 17, 300, 2048, 4095, 9, 9, 1000]
D, F, L, NH, NKV, HD, V, WINDOW = 64, 96, 7, 4, 2, 32, 4096, 4


def random_weights():
    rng = np.random.default_rng(SEED)
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (V, D)),
         "model.norm.weight": rng.normal(0, 0.3, D)}
    for i in range(L):
        p = f"model.layers.{i}."
        for norm in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]:
            w[p + norm + ".weight"] = rng.normal(0, 0.3, D)
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.2, (NH * HD, D))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.2, (NKV * HD, D))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.2, (NKV * HD, D))
        w[p + "self_attn.q_norm.weight"] = rng.normal(0, 0.3, HD)
        w[p + "self_attn.k_norm.weight"] = rng.normal(0, 0.3, HD)
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (D, NH * HD))
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.2, (F, D))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.2, (F, D))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (D, F))
    return {k: v.astype(np.float32) for k, v in w.items()}


def main():
    if len(sys.argv) not in (4, 5) or (len(sys.argv) == 5 and sys.argv[4] != "multimodal"):
        print("usage: gemma3_reference.py OUT_FOLDER TOKENIZER_JSON QUERY_PRE_ATTN_SCALAR [multimodal]", file=sys.stderr)
        sys.exit(64)
    out, tokenizer_json, scalar = sys.argv[1], sys.argv[2], int(sys.argv[3])
    multimodal = len(sys.argv) == 5

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = Gemma3TextConfig(
        hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=NH, num_key_value_heads=NKV,
        head_dim=HD, vocab_size=V, rms_norm_eps=1e-6, query_pre_attn_scalar=scalar, sliding_window=WINDOW,
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0, pad_token_id=None,
        dtype="float32", architectures=["Gemma3ForCausalLM"], attn_implementation="eager")
    assert config.model_type == "gemma3_text"
    assert config.layer_types == ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"], config.layer_types

    torch.manual_seed(SEED)
    weights = random_weights()
    if multimodal:
        from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
        vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                    image_size=28, patch_size=14)
        full = Gemma3Config(text_config=config.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
                            image_token_index=V + 10, boi_token_index=V + 11, eoi_token_index=V + 12,
                            tie_word_embeddings=True, dtype="float32", architectures=["Gemma3ForConditionalGeneration"])
        model = Gemma3ForConditionalGeneration(full).to(torch.float32)
        model.model.language_model.load_state_dict({k[len("model."):]: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        weights = {"language_model." + k: v for k, v in weights.items()}
    else:
        model = Gemma3ForCausalLM(config).to(torch.float32)
        state = {k: torch.from_numpy(v) for k, v in weights.items()}
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
        model.load_state_dict(state, strict=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(tokenizer_json, out + "/tokenizer.json")
    shutil.copyfile(os.path.join(os.path.dirname(tokenizer_json), "tokenizer_config.json"), out + "/tokenizer_config.json")

    check_saved(out, weights, prefix="language_model." if multimodal else "")
    return sampled_logits(model, IDS)


if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):
        line = main()
    print(line)
