#!/usr/bin/env python3
"""Writes a synthetic Llama-architecture fp32 folder of about SIZE_GB for the larger-than-RAM benchmark.

Usage: python synthetic_llama.py OUT_FOLDER SIZE_GB TOKENIZER_FOLDER

hidden 4096, intermediate 11008, 32 heads (8 KV heads), vocab 4096 (the bundled model's tokenizer, copied
from TOKENIZER_FOLDER), as many layers as fit SIZE_GB; one safetensors shard per layer plus one for the
embeddings, head and final norm, and model.safetensors.index.json. Values are deterministic: tensor i is
N(0, 0.02) from numpy's PCG64 seeded with i (norm weights are 1). Tensors are written one at a time, so
the writer's memory stays at one tensor.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

D, F, HEADS, KV, V = 4096, 11008, 32, 8, 4096


def write_shard(path, tensors):
    """tensors: list of (name, shape, maker) with maker() -> float32 array; streams them into one file."""
    header, offset = {}, 0
    for name, shape, _ in tensors:
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, shape, maker in tensors:
            f.write(np.ascontiguousarray(maker(), dtype=np.float32).tobytes())
    return offset


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: synthetic_llama.py OUT_FOLDER SIZE_GB TOKENIZER_FOLDER")
    out, size_gb, tokenizer = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    kv = D // HEADS * KV
    layer_params = 2 * D * D + 2 * D * kv + 3 * D * F + 2 * D
    layers = max(1, int((size_gb * 1e9 - 2 * V * D * 4) // (layer_params * 4)))
    counter = [0]

    def normal(shape):
        counter[0] += 1
        seed = counter[0]
        return lambda: np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    def ones(shape):
        return lambda: np.ones(shape, dtype=np.float32)

    weight_map, total = {}, 0
    outer = [("model.embed_tokens.weight", (V, D), normal((V, D))), ("lm_head.weight", (V, D), normal((V, D))),
             ("model.norm.weight", (D,), ones((D,)))]
    shards = [("model-outer.safetensors", outer)]
    for i in range(layers):
        p = f"model.layers.{i}."
        shards.append((f"model-layer-{i:03d}.safetensors", [
            (p + "input_layernorm.weight", (D,), ones((D,))),
            (p + "self_attn.q_proj.weight", (D, D), normal((D, D))),
            (p + "self_attn.k_proj.weight", (kv, D), normal((kv, D))),
            (p + "self_attn.v_proj.weight", (kv, D), normal((kv, D))),
            (p + "self_attn.o_proj.weight", (D, D), normal((D, D))),
            (p + "post_attention_layernorm.weight", (D,), ones((D,))),
            (p + "mlp.gate_proj.weight", (F, D), normal((F, D))),
            (p + "mlp.up_proj.weight", (F, D), normal((F, D))),
            (p + "mlp.down_proj.weight", (D, F), normal((D, F))),
        ]))
    for file, tensors in shards:
        total += write_shard(os.path.join(out, file), tensors)
        for name, _, _ in tensors:
            weight_map[name] = file
        print(f"{file}: {total / 1e9:.2f} GB", file=sys.stderr, flush=True)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D, "intermediate_size": F,
              "num_hidden_layers": layers, "num_attention_heads": HEADS, "num_key_value_heads": KV, "vocab_size": V,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": False,
              "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copyfile(os.path.join(tokenizer, name), os.path.join(out, name))
    print(f"{layers} layers, {total / 1e9:.2f} GB", file=sys.stderr)


if __name__ == "__main__":
    main()
