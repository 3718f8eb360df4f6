#!/usr/bin/env python3
"""ResNet-50 batch 1 fp32 on the CPU: sprun vs onnxruntime, same machine, same run.

    python3 bench/cpu/resnet50_vs_ort.py --sprun build/bin/sprun [--runs 20] [--threads N] [--md OUT.md]

Builds ResNet-50 with models/resnet50.py (and an 80 % unstructured pruned copy),
times `sprun --runs` (median of many after warm-up, wall clock) and onnxruntime
(default graph optimisations, intra-op threads = N) on the same input, and
prints a Markdown table with the ratio. The issue's target: sprun <= 2x onnxruntime.
"""
import argparse, os, re, subprocess, sys, time, datetime, platform
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def time_ort(path, x, runs, threads, warmup=3):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(warmup):
        s.run(None, {name: x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1e6)
    t.sort()
    return t[len(t) // 2], t[min(len(t) - 1, len(t) * 9 // 10)]


def time_sprun(sprun, path, inp, runs, threads, fmt):
    out = sh([sprun, path, inp, "--runs", str(runs), "--threads", str(threads), "--backend", "cpu",
              "--format", fmt, "-q"])
    m = re.search(r"median ([\d.]+) us, p90 ([\d.]+) us", out)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sprun", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-cpu"))
    ap.add_argument("--md")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    dense = os.path.join(a.workdir, "resnet50.onnx")
    pruned = os.path.join(a.workdir, "resnet50-u80.onnx")
    if not os.path.exists(dense):
        sh([sys.executable, os.path.join(ROOT, "models", "resnet50.py"), "-o", dense])
    if not os.path.exists(pruned):
        sh([sys.executable, os.path.join(ROOT, "models", "prune.py"), dense, "-o", pruned, "--unstructured", "0.8"])
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    inp = os.path.join(a.workdir, "input.bin")
    x.tofile(inp)
    rows = []
    for label, path, fmt in [("ResNet-50 dense", dense, "dense"), ("ResNet-50 80% unstructured", pruned, "dense"),
                             ("ResNet-50 80% unstructured", pruned, "auto")]:
        ort_med, ort_p90 = time_ort(path, x, a.runs, a.threads)
        sp_med, sp_p90 = time_sprun(a.sprun, path, inp, a.runs, a.threads, fmt)
        rows.append((label, fmt, sp_med, sp_p90, ort_med, ort_p90, sp_med / ort_med))
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    import onnxruntime as ort
    lines = [f"# ResNet-50 batch 1, fp32, CPU: sprun vs onnxruntime",
             "",
             f"{datetime.date.today()}, commit {commit}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, {a.threads} threads, onnxruntime {ort.__version__} (ORT_ENABLE_ALL), "
             f"median / p90 of {a.runs} runs after 3 warm-up, wall clock (ms).",
             "",
             "| model | sprun --format | sprun median | sprun p90 | onnxruntime median | onnxruntime p90 | sprun / ort |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]/1e3:.1f} | {r[3]/1e3:.1f} | {r[4]/1e3:.1f} | {r[5]/1e3:.1f} | {r[6]:.2f} |")
    lines.append("")
    lines.append("Target (issue 3): sprun dense <= 2x onnxruntime.")
    text = "\n".join(lines)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
