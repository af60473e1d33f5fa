#!/usr/bin/env python3
"""Makes the fuzzers' committed inputs from the repository's real files.

Usage: python Scripts/fuzz_seeds.py QUANTA_BINARY
Needs the oracle venv (numpy, safetensors; sentencepiece, tokenizers and transformers for the
SentencePiece seeds): Scripts/setup.sh --oracles --torch

Writes
- Fuzz/Fixtures/tiny-llama: the bundled austen-llama cut down to 1 block, width 32, the first 320
  tokens of its tokenizer (merges kept when both parts and the result survive), weights sliced
  from the real ones and stored as F16 (the fixture of the `config` harness, and a seed);
- Fuzz/Corpus/NAME: seeds per harness: tiny-llama converted by QUANTA_BINARY to GGUF (F32, F16,
  Q8_0, Q4_0, IQ4_NL) and to GPTQ, MLX, compressed-tensors and AWQ folders, its importance matrix (GGUF and .dat), the configs of every supported
  family as the tests write them, recipes, a report cut to two rows, a SentencePiece model and
  tokenizer.json trained on Calibration/austen-train.txt (Scripts/sentencepiece_vocabulary.py).
The same command gives the same files (fixed slices, one-thread SentencePiece training).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "Models", "austen-llama")
VOCAB, WIDTH, HEADS, KV_HEADS, HEAD_DIM, FFN = 320, 32, 2, 1, 16, 64


def corpus(name):
    path = os.path.join(ROOT, "Fuzz", "Corpus", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def tiny_llama(folder, vocab_size=VOCAB):
    os.makedirs(folder, exist_ok=True)
    config = json.load(open(os.path.join(MODEL, "config.json")))
    config.update(hidden_size=WIDTH, intermediate_size=FFN, num_hidden_layers=1, num_attention_heads=HEADS,
                  num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM, vocab_size=vocab_size, max_position_embeddings=64,
                  tie_word_embeddings=True, torch_dtype="float16", dtype="float16")
    write(os.path.join(folder, "config.json"), json.dumps(config, indent=2) + "\n")
    tokenizer = json.load(open(os.path.join(MODEL, "tokenizer.json")))
    vocab = {t: i for t, i in tokenizer["model"]["vocab"].items() if i < VOCAB}
    tokenizer["model"]["vocab"] = vocab
    merges = []
    for merge in tokenizer["model"]["merges"]:
        a, b = merge if isinstance(merge, list) else merge.split(" ")
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(merge)
    tokenizer["model"]["merges"] = merges
    write(os.path.join(folder, "tokenizer.json"), json.dumps(tokenizer, ensure_ascii=False) + "\n")
    shutil.copy(os.path.join(MODEL, "tokenizer_config.json"), folder)
    weights = load_file(os.path.join(MODEL, "model.safetensors"))
    q_rows, kv_rows = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    out = {
        "model.embed_tokens.weight": weights["model.embed_tokens.weight"][:vocab_size, :WIDTH],
        "model.norm.weight": weights["model.norm.weight"][:WIDTH],
        "model.layers.0.input_layernorm.weight": weights["model.layers.0.input_layernorm.weight"][:WIDTH],
        "model.layers.0.post_attention_layernorm.weight": weights["model.layers.0.post_attention_layernorm.weight"][:WIDTH],
        "model.layers.0.self_attn.q_proj.weight": weights["model.layers.0.self_attn.q_proj.weight"][:q_rows, :WIDTH],
        "model.layers.0.self_attn.k_proj.weight": weights["model.layers.0.self_attn.k_proj.weight"][:kv_rows, :WIDTH],
        "model.layers.0.self_attn.v_proj.weight": weights["model.layers.0.self_attn.v_proj.weight"][:kv_rows, :WIDTH],
        "model.layers.0.self_attn.o_proj.weight": weights["model.layers.0.self_attn.o_proj.weight"][:WIDTH, :q_rows],
        "model.layers.0.mlp.gate_proj.weight": weights["model.layers.0.mlp.gate_proj.weight"][:FFN, :WIDTH],
        "model.layers.0.mlp.up_proj.weight": weights["model.layers.0.mlp.up_proj.weight"][:FFN, :WIDTH],
        "model.layers.0.mlp.down_proj.weight": weights["model.layers.0.mlp.down_proj.weight"][:WIDTH, :FFN],
    }
    save_file({k: np.ascontiguousarray(v).astype(np.float16) for k, v in out.items()}, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fuzz_seeds.py QUANTA_BINARY")
    quanta = sys.argv[1]
    fixture = os.path.join(ROOT, "Fuzz", "Fixtures", "tiny-llama")
    tiny_llama(fixture)
    work = tempfile.mkdtemp()
    try:
        gguf, model = corpus("gguf"), corpus("gguf-model")
        for preset in ["F32", "F16", "Q8_0", "Q4_0", "IQ4_NL"]:
            out = os.path.join(gguf, f"tiny-llama-{preset}.gguf")
            subprocess.run([quanta, "quantize", fixture, out, preset, "--pure"] if preset != "F32" and preset != "F16"
                           else [quanta, "quantize", fixture, out, preset], check=True, stdout=subprocess.DEVNULL)
            if preset in ("F16", "Q8_0"):
                shutil.copy(out, model)
        write(os.path.join(work, "text.txt"), open(os.path.join(ROOT, "Calibration", "austen-train.txt")).read()[:4000])
        imatrix = corpus("imatrix")
        for ext in ["gguf", "dat"]:
            # Relative paths from the work folder: the files record the data path, and must not vary.
            subprocess.run([os.path.abspath(quanta), "calibrate", fixture, "--data", "text.txt", "--samples", "2", "--seq-len", "16",
                            "--hessian", "none", "--out", f"stats-{ext}.h5", "--export-imatrix", os.path.join(imatrix, f"tiny-llama.{ext}")],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)

        # Quantized folders of tiny-llama as one input each: config.json, NUL, quantize_config.json, NUL, model.safetensors.
        quantized = corpus("quantized-folder")
        rtn = ["--method", "rtn", "--group-size", "32"]
        for name, args in [("gptq", rtn + ["--format", "gptq", "--bits", "4"]), ("gptq-act", rtn + ["--format", "gptq", "--bits", "8", "--asym"]),
                           ("mlx", rtn + ["--format", "mlx", "--bits", "4"]), ("compressed-tensors", rtn + ["--format", "compressed-tensors", "--bits", "4"]),
                           ("awq", ["--format", "awq", "--method", "awq", "--data", "text.txt", "--samples", "2", "--seq-len", "16", "--group-size", "32"])]:
            out = os.path.join(work, "q-" + name)
            subprocess.run([os.path.abspath(quanta), "quantize", fixture, out] + args, check=True, stdout=subprocess.DEVNULL, cwd=work)
            extra = os.path.join(out, "quantize_config.json")
            parts = [open(os.path.join(out, "config.json"), "rb").read(), open(extra, "rb").read() if os.path.exists(extra) else b"",
                     open(os.path.join(out, "model.safetensors"), "rb").read()]
            write(os.path.join(quantized, f"tiny-llama-{name}.bin"), b"\0".join(parts))

        st = corpus("safetensors")
        shutil.copy(os.path.join(fixture, "model.safetensors"), os.path.join(st, "tiny-llama.safetensors"))
        save_file({"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "bf16": np.zeros(0, dtype=np.float32)[:0],
                   "i32": np.array([1, -2], dtype=np.int32), "u8": np.array([7], dtype=np.uint8), "b": np.array([True, False]),
                   "f64": np.array([0.5], dtype=np.float64), "i64": np.array([[3]], dtype=np.int64)}, os.path.join(st, "dtypes.safetensors"))

        index = corpus("safetensors-index")
        shard = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        write(os.path.join(index, "index.json"), json.dumps(
            {"metadata": {"total_size": 26}, "weight_map": {"a.weight": shard[0], "b": shard[0], "c.weight": shard[1]}}, indent=2))
        write(os.path.join(index, "one-shard.json"), json.dumps({"weight_map": {"a.weight": shard[0], "b": shard[0]}}))

        configs = corpus("config")
        shutil.copy(os.path.join(fixture, "config.json"), os.path.join(configs, "tiny-llama.json"))
        families = {
            "qwen2": {"model_type": "qwen2", "tie_word_embeddings": True, "rope_theta": 1000000.0, "use_sliding_window": False},
            "qwen3": {"model_type": "qwen3", "head_dim": 16, "tie_word_embeddings": True},
            "mistral": {"model_type": "mistral", "sliding_window": None, "head_dim": 16},
            "gemma3": {"model_type": "gemma3_text", "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 8,
                       "sliding_window_pattern": 2, "rope_local_base_freq": 10000.0, "rope_scaling": None,
                       "final_logit_softcapping": None, "attn_logit_softcapping": None, "hidden_activation": "gelu_pytorch_tanh"},
            "phi3": {"model_type": "phi3", "partial_rotary_factor": 0.5, "original_max_position_embeddings": 32,
                     "rope_scaling": {"type": "longrope", "short_factor": [1.0] * 4, "long_factor": [2.0] * 4}},
        }
        base = json.load(open(os.path.join(fixture, "config.json")))
        for name, changes in families.items():
            config = {k: v for k, v in base.items() if k not in ("head_dim", "rope_parameters")}
            config.update(changes)
            write(os.path.join(configs, f"{name}.json"), json.dumps(config, indent=2))

        tokenizers = corpus("tokenizer")
        tok = open(os.path.join(fixture, "tokenizer.json"), "rb").read().rstrip(b"\n")
        write(os.path.join(tokenizers, "tiny-llama.json"), tok)
        write(os.path.join(tokenizers, "tiny-llama-with-config.json"),
              tok + b"\0" + open(os.path.join(fixture, "tokenizer_config.json"), "rb").read())
        sp = corpus("sentencepiece")
        subprocess.run([sys.executable, os.path.join(ROOT, "Scripts", "sentencepiece_vocabulary.py"), ".", "text.txt"], check=True, cwd=work)
        shutil.copy(os.path.join(work, "sp.model"), os.path.join(sp, "austen-bpe.model"))
        shutil.copy(os.path.join(work, "sp.json"), os.path.join(tokenizers, "austen-sentencepiece.json"))
        # The same tiny model with that SentencePiece vocabulary: a GGUF "llama" tokenizer (scores, types).
        spm_folder = os.path.join(work, "tiny-spm")
        spm_vocab = len(json.load(open(os.path.join(work, "sp.json")))["model"]["vocab"])
        tiny_llama(spm_folder, vocab_size=spm_vocab)
        shutil.copy(os.path.join(work, "sp.json"), os.path.join(spm_folder, "tokenizer.json"))
        config = json.load(open(os.path.join(spm_folder, "config.json")))
        config.update(bos_token_id=1, eos_token_id=2)
        write(os.path.join(spm_folder, "config.json"), json.dumps(config, indent=2) + "\n")
        write(os.path.join(spm_folder, "tokenizer_config.json"), json.dumps({"add_bos_token": True, "bos_token": "<s>", "eos_token": "</s>"}))
        out = os.path.join(model, "tiny-spm-Q8_0.gguf")
        subprocess.run([quanta, "quantize", spm_folder, out, "Q8_0", "--pure"], check=True, stdout=subprocess.DEVNULL)

        js = corpus("json")
        for name in ["config.json", "tokenizer_config.json", "generation_config.json", "eval_results.json"]:
            shutil.copy(os.path.join(MODEL, name), os.path.join(js, name))
        shutil.copy(os.path.join(index, "index.json"), os.path.join(js, "index.json"))

        recipes = corpus("recipe")
        write(os.path.join(recipes, "gguf.yaml"),
              "preset: Q4_K_M\nrules:\n  - match: 'blk\\.[0-2]\\.ffn_down'\n    scheme: Q6_K\n  - match: 'ffn_down'\n    scheme: Q4_K+gptq\n"
              "  - match: '^output\\.weight$'\n    scheme: skip\nmethod: {name: gptq, damp: 0.01, act_order: true}\n"
              "calibration: {data: Calibration/calib-wiki.txt, samples: 128, seq_len: 512, seed: 0}\n")
        write(os.path.join(recipes, "grid.yaml"),
              "format: gptq\ndefault: w4g128\nrules:\n  - match: 'attn_[qkv]'\n    scheme: w8g-1\nmethod:\n  name: gptq\n  damp: 0.05\n"
              "  act_order: false\n  static_groups: true\n  mse: true\n")
        write(os.path.join(recipes, "awq.yaml"), "default: Q4_K\nrules: []\nmethod: awq\n")

        reports = corpus("report")
        report = json.load(open(os.path.join(ROOT, "Reports", "austen-llama", "report.json")))
        for key, value in report.items():
            if isinstance(value, list) and len(value) > 2:
                report[key] = value[:2]
        write(os.path.join(reports, "austen-llama-2-rows.json"), json.dumps(report, indent=1))
        report["rows"][0].update(perplexity=1e300, bytes=2 ** 62, mean_kld=5e-324, p99_kld=0)
        write(os.path.join(reports, "extreme-numbers.json"), json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
