"""NF4 (4-bit NormalFloat, absmax per group of 64) packing of a safetensors file, and back."""

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


def pack(src: str, dst: str) -> None:
    from safetensors.numpy import load_file

    sd = load_file(src)
    out = {}
    for k, v in sd.items():
        if v.dtype == np.float32 and v.ndim == 2 and v.size % G == 0 and v.size >= 4096:
            x = v.reshape(-1, G)
            s = np.maximum(np.abs(x).max(1, keepdims=True), 1e-8).astype(np.float16)
            y = x / s.astype(np.float32)
            mid = (NF4[1:] + NF4[:-1]) / 2
            idx = np.searchsorted(mid, y).astype(np.uint8).reshape(-1)
            out[k + "::q"] = (idx[0::2] | (idx[1::2] << 4)).astype(np.uint8)
            out[k + "::s"] = s.reshape(-1)
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
            q = z[k]
            idx = np.empty(q.size * 2, dtype=np.uint8)
            idx[0::2], idx[1::2] = q & 15, q >> 4
            s = z[name + "::s"].astype(np.float32)
            w = (NF4[idx].reshape(-1, G) * s[:, None]).reshape(tuple(z[name + "::shape"]))
            sd[name] = torch.from_numpy(np.ascontiguousarray(w))
        elif "::" not in k:
            sd[k] = torch.from_numpy(np.ascontiguousarray(z[k]))
    save_file(sd, dst)


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](sys.argv[2], sys.argv[3])
