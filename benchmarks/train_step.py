"""Seconds per training step of the taggers' encoders on this CPU, fp32 against bf16 autocast.

    python benchmarks/train_step.py [--encoders minilm mpnet] [--steps 3] [--threads 2]

One step = forward, loss, backward and an AdamW update of the encoder with a token head, on a
batch of random token ids (8 x 256, the taggers' training batch). The configs' ``bf16`` setting
depends on the CPU: without native bf16 (AVX-512 BF16 / AMX) autocast emulates it and is slower
than fp32. Prints one line per encoder and precision, and the CPU's bf16 flags. Needs the
``[train]`` extra (and the MPNet parts for ``mpnet``: see MODEL_CARD.md)."""

from __future__ import annotations

import argparse
import os
import time

from unspin.errors import exit_on_error

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = set(fh.read().split())
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"])
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    args = ap.parse_args()

    import torch
    from transformers import AutoModel

    from unspin.train.encoders import resolve_encoder

    torch.set_num_threads(args.threads)
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__}, {args.threads} threads")
    for name in args.encoders:
        enc = AutoModel.from_pretrained(str(resolve_encoder(name)), local_files_only=True)
        head = torch.nn.Linear(enc.config.hidden_size, 3)
        params = list(enc.parameters()) + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=1e-5)
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, 20000, (args.batch, args.length), generator=gen)
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 3, (args.batch, args.length), generator=gen)
        for bf16 in (False, True):
            times = []
            for step in range(args.steps + 1):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden = enc(input_ids=ids, attention_mask=mask).last_hidden_state
                    logits = head(hidden).float()
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1))
                loss.backward()
                opt.step()
                opt.zero_grad()
                if step:  # the first step warms up
                    times.append(time.perf_counter() - t0)
            mean = sum(times) / len(times)
            print(
                f"{name:7s} {'bf16' if bf16 else 'fp32'}: {mean:.2f} s a step "
                f"(batch {args.batch} x {args.length}, {args.steps} steps)",
                flush=True,
            )


if __name__ == "__main__":
    exit_on_error(main)
