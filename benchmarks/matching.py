"""Training and inference throughput of the Bridge Neural Network on this CPU, in pairs per second.

A *pair* is one SAR patch (1 channel) through the SAR branch plus one optical patch (3 channels) through the
optical branch, at 256 x 256. Training pairs/s count positive pairs per optimiser step (negatives are rolled
in the batch and cost no extra forward pass). Each configuration runs in its own process, so allocator
(``LD_PRELOAD``) and thread settings do not leak between them.

Configurations tried: threads (1, 2), channels-last memory format, bf16 autocast, ``torch.inference_mode``
(always
on for inference), and jemalloc with decay disabled::

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:-1,muzzy_decay_ms:-1

(Debian/Ubuntu: ``apt-get install libjemalloc2``.) Freed memory is then kept for reuse instead of being
returned to the OS and faulted back in on every batch, which is what makes glibc malloc slow for convolutions
here.

Anchors printed beside the figures (measured on this machine when the issue was written): resnet18 ~8-10
pairs/s inference, ~3.3 training; resnet50 ~2.7 and ~0.65; fp32 ceilings ~24 (resnet18) and ~11 (resnet50)
inference pairs/s; target >= 50% of the ceiling. The machine is shared: the load average is printed with the
results, and figures taken under load understate what an idle machine gives.

Usage::

    python benchmarks/matching.py                       # resnet18 and resnet50, every configuration
    python benchmarks/matching.py --backbones resnet18 --seconds 10 --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:-1,muzzy_decay_ms:-1"
ANCHORS = {  # (inference, training) pairs/s measured when the issue was written; inference fp32 ceiling
    "resnet18": {"infer": 9.0, "train": 3.3, "ceiling": 24.0},
    "resnet50": {"infer": 2.7, "train": 0.65, "ceiling": 11.0},
}


def worker(args: argparse.Namespace) -> None:
    """Measure one configuration and print one JSON line."""
    import torch

    from saropt.matching.losses import bnn_distance, bnn_loss, roll_pairs
    from saropt.matching.models import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("bnn", args.backbone, embedding_dim=128)
    b, s = args.batch, args.size
    sar, opt = torch.rand(b, 1, s, s), torch.rand(b, 3, s, s)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        sar = sar.contiguous(memory_format=torch.channels_last)
        opt = opt.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16))

    if args.mode == "train":
        model.train()
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            with amp:
                fs, fo = model.encode_sar(sar), model.encode_opt(opt)
                loss = bnn_loss(
                    bnn_distance(fs.float(), fo.float()), bnn_distance(fs.float(), roll_pairs(fo, 1).float())
                )
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode(), amp:
                model.pair_scores(model.encode_sar(sar), model.encode_opt(opt))

    for _ in range(args.warmup):
        step()
    n, t0 = 0, time.perf_counter()
    c0 = time.process_time()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= args.seconds and n >= 2:
            break
    cpu = time.process_time() - c0
    print(json.dumps({"pairs_per_s": n * b / dt, "cpu_s_per_pair": cpu / (n * b), "steps": n}))


def run_config(
    backbone: str, mode: str, threads: int, cl: bool, bf16: bool, jemalloc: bool, seconds: float, size: int
) -> dict[str, float] | None:
    env = dict(os.environ)
    if jemalloc:
        if not os.path.exists(JEMALLOC):
            return None
        env["LD_PRELOAD"] = JEMALLOC
        env["MALLOC_CONF"] = JEMALLOC_CONF
    batch = 8 if mode == "train" else 16
    if backbone == "resnet50" and mode == "train":
        batch = 4  # one step of 8 takes minutes on a busy 2-core machine
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--backbone",
        backbone,
        "--mode",
        mode,
        "--threads",
        str(threads),
        "--batch",
        str(batch),
        "--size",
        str(size),
        "--seconds",
        str(seconds),
        "--warmup",
        "1",
    ]
    cmd += ["--channels-last"] if cl else []
    cmd += ["--bf16"] if bf16 else []
    try:  # a configuration that cannot finish a few steps in this time is reported as failed
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                             timeout=30 * seconds + 120)
    except subprocess.TimeoutExpired:
        print(f"  timed out: {' '.join(cmd[2:])}", file=sys.stderr)
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"  failed: {' '.join(cmd[2:])}: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def _measure(backbone: str, mode: str, v: dict, args: argparse.Namespace, results: list) -> float | None:
    r = run_config(
        backbone, mode, v["threads"], v["channels_last"], v["bf16"], v["jemalloc"], args.seconds, args.size
    )
    if r is None:
        return None
    a = ANCHORS.get(backbone, {})
    results.append({"backbone": backbone, "mode": mode, **v, **r})
    ceiling = f"{a['ceiling']:.1f}" if mode == "infer" and "ceiling" in a else "-"
    print(
        f"| {backbone} | {mode} | {v['threads']} | {'jemalloc' if v['jemalloc'] else 'glibc'} | "
        f"{v['channels_last']} | {v['bf16']} | {r['pairs_per_s']:.2f} | {r['cpu_s_per_pair']:.3f} | "
        f"{a.get(mode, float('nan')):.2f} | {ceiling} |",
        flush=True,
    )
    return float(r["pairs_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--mode", choices=["train", "infer"], default="infer")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seconds", type=float, default=15.0, help="measuring time per configuration")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument(
        "--quick", action="store_true", help="only threads and allocator variants (no channels_last, bf16)"
    )
    p.add_argument("--json", help="also write all results to this JSON file")
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    results = []
    load0 = os.getloadavg()[0]
    print(f"# BNN throughput at {args.size}x{args.size}, {os.cpu_count()} CPU(s), load average {load0:.1f}")
    print("| backbone | mode | threads | alloc | channels_last | bf16 | pairs/s | CPU s/pair | anchor "
          "| ceiling |")
    print("|---|---|---:|---|---|---|---:|---:|---:|---:|")
    for backbone in args.backbones:
        for mode in ("infer", "train"):
            # one factor at a time from the default (2 threads, glibc, fp32, contiguous), then the best
            # of each together
            base = {"threads": 2, "jemalloc": False, "channels_last": False, "bf16": False}
            variants = [base, {**base, "threads": 1}, {**base, "jemalloc": True}]
            if not args.quick:
                variants += [{**base, "channels_last": True}, {**base, "bf16": True}]
            measured = []
            for v in variants:
                measured.append((v, _measure(backbone, mode, v, args, results)))
            best = dict(base)
            for v, r in measured[1:]:
                if r is not None and measured[0][1] is not None and r > measured[0][1]:
                    best.update({k: val for k, val in v.items() if val != base[k]})
            if best != base and best not in variants:
                _measure(backbone, mode, best, args, results)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    for backbone in args.backbones:
        for mode in ("infer", "train"):
            rows = [r for r in results if r["backbone"] == backbone and r["mode"] == mode]
            if rows:
                best = max(rows, key=lambda r: r["pairs_per_s"])
                extra = ""
                if mode == "infer" and backbone in ANCHORS:
                    pct = 100 * best["pairs_per_s"] / ANCHORS[backbone]["ceiling"]
                    extra = f" = {pct:.0f}% of the fp32 ceiling"
                print(
                    f"fastest {backbone} {mode}: {best['pairs_per_s']:.2f} pairs/s with "
                    f"threads={best['threads']}, "
                    f"{'jemalloc' if best['jemalloc'] else 'glibc'}, channels_last={best['channels_last']}, "
                    f"bf16={best['bf16']}{extra}"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_average": load0, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
