"""Shared by the Hugging Face oracle scripts (qwen3_reference.py, gemma3_reference.py, phi3_reference.py)."""
import sys

import numpy as np


def check_saved(folder, weights, prefix=""):
    """Exits unless FOLDER/model.safetensors holds exactly `weights` (name -> float32 array) among
    its tensors named with `prefix`, bit for bit; lists every saved tensor on stderr."""
    from safetensors import safe_open

    with safe_open(folder + "/model.safetensors", framework="np") as f:
        saved = {name: f.get_tensor(name) for name in f.keys()}
    for name in sorted(saved):
        print(f"{name} {list(saved[name].shape)} {saved[name].dtype}", file=sys.stderr)
    saved = {k: v for k, v in saved.items() if k.startswith(prefix)}
    if set(saved) != set(weights):
        sys.exit(f"saved tensor names differ: missing {sorted(set(weights) - set(saved))}, "
                 f"extra {sorted(set(saved) - set(weights))}")
    for name, value in weights.items():
        if saved[name].dtype != np.float32 or not np.array_equal(saved[name], value):
            sys.exit(f"saved tensor {name} differs from the generated weights")


def sampled_logits(model, ids):
    """Logits of one sequence at every 97th vocabulary column, row-major, as space-separated repr(float)."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return " ".join(repr(float(v)) for v in logits[:, ::97].reshape(-1).tolist())
