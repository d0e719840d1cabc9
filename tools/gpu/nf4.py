"""NF4 (4-bit NormalFloat, absmax per group of 64) packing of a safetensors file, and back.

python tools/gpu/nf4.py pack MODEL.safetensors OUT.npz
python tools/gpu/nf4.py unpack OUT.npz MODEL.safetensors
python tools/gpu/nf4.py cosine ENCODER_DIR OUT.npz   # how close the round trip stays
"""

import sys

import numpy as np

NF4 = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=np.float32,
)
G = 64


def quantize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NF4 codes (two a byte) and an fp16 absmax per group of G; an all-zero group (or one
    whose absmax rounds to 0 in fp16) stays zero."""
    x = a.reshape(-1, G)
    s = np.abs(x).max(1, keepdims=True).astype(np.float16)
    s[s == 0] = 1.0
    idx = np.searchsorted((NF4[1:] + NF4[:-1]) / 2, x / s.astype(np.float32)).astype(np.uint8)
    idx = idx.reshape(-1)
    return (idx[0::2] | (idx[1::2] << 4)).astype(np.uint8), s.reshape(-1)


def dequantize(q: np.ndarray, s: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of ``quantize`` (fp32)."""
    idx = np.empty(q.size * 2, dtype=np.uint8)
    idx[0::2], idx[1::2] = q & 15, q >> 4
    return (NF4[idx].reshape(-1, G) * s.astype(np.float32)[:, None]).reshape(shape)


def pack(src: str, dst: str) -> None:
    from safetensors.numpy import load_file

    sd = load_file(src)
    out = {}
    for k, v in sd.items():
        if v.dtype == np.float32 and v.ndim == 2 and v.size % G == 0 and v.size >= 4096:
            out[k + "::q"], out[k + "::s"] = quantize(v)
            out[k + "::shape"] = np.array(v.shape, dtype=np.int64)
        else:
            out[k] = v
    np.savez(dst, **out)


def unpack(src: str, dst: str) -> None:
    import torch
    from safetensors.torch import save_file

    z = np.load(src)
    sd = {}
    for k in z.files:
        if k.endswith("::q"):
            name = k[:-3]
            w = dequantize(z[k], z[name + "::s"], tuple(z[name + "::shape"]))
            sd[name] = torch.from_numpy(np.ascontiguousarray(w))
        elif "::" not in k:
            sd[k] = torch.from_numpy(np.ascontiguousarray(z[k]))
    save_file(sd, dst)


def cosine(model_dir: str, packed: str, data: str = "../shared/data/unlabeled-news") -> float:
    """Mean token-level cosine between the original encoder's last hidden states and those of
    its NF4 round trip, on the first 1,500 characters of the first 24 articles of ``data``."""
    import tempfile
    from pathlib import Path

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    files = sorted(Path(data).glob("*.txt"))[:24]
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    enc = [tok.encode(f.read_text(encoding="utf-8")[:1500]).ids[:256] for f in files]
    ids = torch.ones(len(enc), max(map(len, enc)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
    with tempfile.TemporaryDirectory() as tmp:
        for f in Path(model_dir).iterdir():
            if f.is_file() and f.suffix != ".safetensors":
                (Path(tmp) / f.name).write_bytes(f.read_bytes())
        unpack(packed, str(Path(tmp) / "model.safetensors"))
        states = []
        for d in (model_dir, tmp):
            m = AutoModel.from_pretrained(d, local_files_only=True).eval()
            with torch.no_grad():
                states.append(m(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()])
    cos = torch.nn.functional.cosine_similarity(states[0], states[1], dim=-1)
    print(f"token cosine mean {cos.mean():.3f} min {cos.min():.3f} ({len(cos)} tokens)")
    return float(cos.mean())


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack, "cosine": cosine}[sys.argv[1]](*sys.argv[2:])
