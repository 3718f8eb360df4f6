#!/usr/bin/env python3
"""End-to-end check: sprun against onnxruntime on ResNet-50 and BERT, dense and pruned.

    python3 models/e2e_check.py --sprun build/bin/sprun --workdir build/e2e            # tiny (CI)
    python3 models/e2e_check.py --sprun build/bin/sprun --workdir build/e2e --full     # + ResNet-50, BERT-base
    python3 models/e2e_check.py --sprun models/sprun_ort.py --workdir /tmp/e2e         # self-test of the harness

For each model: build it (seeded), prune it three ways (unstructured 0.8, block 16x16:0.7,
2:4) and check the pruned patterns, write seeded raw .bin inputs, compute onnxruntime
references (CPU, fp32, ORT_DISABLE_ALL), run
    SPRUN model.onnx name=file ... -o OUTDIR/ --backend cpu --shape name=dims ...
and compare each output by relative L2 error ||out - ref|| / ||ref||.  A failing or
crashing sprun is recorded with its stderr tail and the run goes on.  Prints a table and
`e2e: N passed, N failed`; exits 1 if anything failed.
"""
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import prune  # noqa: E402
import resnet50  # noqa: E402
import transformer  # noqa: E402
from common import cli_parser, sanitize, save  # noqa: E402
from make_input import make_inputs, write_inputs  # noqa: E402
from reference import session  # noqa: E402

MODELS = [
    # name, builder, config, input shapes by dim name, full-size only
    ("resnet50-tiny", resnet50.build, resnet50.TINY, {"batch": [2]}, False),
    ("bert-tiny", transformer.build, transformer.TINY, {"batch": [2], "seq": [32]}, False),
    ("resnet50", resnet50.build, resnet50.FULL, {"batch": [1]}, True),
    ("bert-base", transformer.build, transformer.FULL, {"batch": [1], "seq": [128]}, True),
]
VARIANTS = [
    ("dense", None),
    ("unstructured-0.8", ("unstructured", 0.8)),
    ("block16x16-0.7", ("block", (16, 16, 0.7))),
    ("2of4", ("nm", (2, 4))),
]


def rel_l2(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(out - ref) / (den if den > 0 else 1.0))


def tail(text, n=400):
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= n else "..." + text[-n:]


class Runner:
    def __init__(self, a):
        self.a = a
        self.rows = []  # (model, variant, output, rel-L2 or None, ok, note)
        self.timing = {}

    def record(self, model, variant, output, err, ok, note=""):
        self.rows.append((model, variant, output, err, ok, note))

    def clock(self, key, t0):
        self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - t0

    def sprun_cmd(self, model_path, input_paths, shapes, out_dir):
        cmd = [self.a.sprun]
        if self.a.sprun.endswith(".py"):
            cmd = [sys.executable, self.a.sprun]
        cmd += [model_path] + [f"{n}={p}" for n, p in input_paths.items()]
        cmd += ["-o", out_dir + os.sep, "--backend", self.a.backend]
        for n, s in shapes.items():
            cmd += ["--shape", f"{n}={'x'.join(map(str, s))}"]
        return cmd

    def check_model(self, name, build, cfg, dims):
        a = self.a
        wd = os.path.join(a.workdir, name)
        os.makedirs(wd, exist_ok=True)
        t0 = time.perf_counter()
        dense, n_params = build(seed=a.seed, **cfg)
        self.clock("build", t0)
        print(f"== {name}: {n_params:,} params, inputs {dims}", flush=True)
        arrays = make_inputs(dense, dims, a.seed)
        input_paths = write_inputs(arrays, os.path.join(wd, "inputs") + os.sep, npy=a.npy)
        input_shapes = {n: list(v.shape) for n, v in arrays.items()}
        dense_ref = None
        for variant, method in VARIANTS:
            if a.variants and not re.search(a.variants, variant):
                continue
            t0 = time.perf_counter()
            model = onnx.ModelProto()
            model.CopyFrom(dense)
            path = os.path.join(wd, f"{variant}.onnx")
            if method is not None:
                rep = prune.prune_model(model, method, shapes=dims)
                problems = prune.check_pattern(model, method)
                summary = prune.summary_lines(rep)
                print(f"   {variant}: {summary[0].split(', ', 1)[1]}; {summary[3].split(': ', 1)[1]}")
                if problems:
                    self.record(name, variant, "(pattern)", None, False, "; ".join(problems[:3]))
            save(model, path)
            self.clock("prune+save", t0)

            t0 = time.perf_counter()
            sess = session(path)
            out_names = [o.name for o in sess.get_outputs()]
            refs = dict(zip(out_names, sess.run(out_names, arrays)))
            self.clock("onnxruntime", t0)
            for o, r in refs.items():
                np.save(os.path.join(wd, f"{variant}.ref.{sanitize(o)}.npy"), r)
            bad = [o for o, r in refs.items() if not np.isfinite(r).all()]
            if bad:
                self.record(name, variant, ",".join(bad), None, False, "reference not finite")
                continue
            first = out_names[0]
            if dense_ref is None:
                dense_ref = refs[first]
                effect = ""
            else:
                effect = f"pruning moved ref by {rel_l2(refs[first], dense_ref):.2f}"

            out_dir = os.path.join(wd, f"{variant}.out")
            shutil.rmtree(out_dir, ignore_errors=True)
            os.makedirs(out_dir)
            cmd = self.sprun_cmd(path, input_paths, input_shapes, out_dir)
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
                rc, err_text = p.returncode, p.stderr or p.stdout
            except subprocess.TimeoutExpired as e:
                rc, err_text = "timeout", f"killed after {a.timeout} s " + str(e.stderr or "")
            except OSError as e:
                rc, err_text = "exec", str(e)
            dt = time.perf_counter() - t0
            self.clock("sprun", t0)
            if rc != 0:
                self.record(name, variant, "*", None, False, f"sprun exit {rc} ({dt:.1f} s): {tail(err_text)}")
                continue
            for o, r in refs.items():
                f = os.path.join(out_dir, sanitize(o) + ".npy")
                note = f"sprun {dt:.2f} s" + (f", {effect}" if effect else "")
                if not os.path.exists(f):
                    self.record(name, variant, o, None, False, f"no {f}; {note}")
                    continue
                try:
                    out = np.load(f)
                except Exception as e:  # a malformed .npy is a sprun failure, not ours
                    self.record(name, variant, o, None, False, f"unreadable {f}: {e}")
                    continue
                if out.shape != r.shape:
                    self.record(name, variant, o, None, False, f"shape {out.shape} != {r.shape}; {note}")
                    continue
                e = rel_l2(out, r)
                self.record(name, variant, o, e, bool(np.isfinite(e) and e <= a.tol), note)

    def report(self, t_start):
        w = [max([len(str(r[i])) for r in self.rows] + [len(h)]) for i, h in enumerate(("model", "variant", "output"))]
        print()
        print(f"{'model':<{w[0]}}  {'variant':<{w[1]}}  {'output':<{w[2]}}  {'rel-L2':>9}  result  note")
        for m, v, o, e, ok, note in self.rows:
            es = "-" if e is None else f"{e:.2e}"
            print(f"{m:<{w[0]}}  {v:<{w[1]}}  {o:<{w[2]}}  {es:>9}  {'pass' if ok else 'FAIL'}    {note}")
        print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timing.items())
              + f"; total {time.perf_counter() - t_start:.1f} s")
        passed = sum(1 for r in self.rows if r[4])
        failed = len(self.rows) - passed
        print(f"e2e: {passed} passed, {failed} failed")
        return failed


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("--sprun", default=os.path.join(os.path.dirname(HERE), "build", "bin", "sprun"),
                    help="sprun binary (a .py file runs with this Python); default build/bin/sprun")
    ap.add_argument("--workdir", required=True, help="where models, inputs, references and outputs go")
    ap.add_argument("--full", action="store_true", help="also full ResNet-50 (batch 1) and BERT-base (1x128)")
    ap.add_argument("--only", metavar="REGEX", help="models whose name matches")
    ap.add_argument("--variants", metavar="REGEX", help="variants whose name matches")
    ap.add_argument("--tol", type=float, default=1e-4, help="max relative L2 error (default 1e-4)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per sprun run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--npy", action="store_true", help="hand sprun .npy inputs instead of raw .bin")
    a = ap.parse_args(argv)
    a.workdir = os.path.abspath(a.workdir)
    r = Runner(a)
    t0 = time.perf_counter()
    for name, build, cfg, dims, full in MODELS:
        if (full and not a.full) or (a.only and not re.search(a.only, name)):
            continue
        try:
            r.check_model(name, build, cfg, dims)
        except Exception as e:  # keep going: one broken model must not hide the others
            r.record(name, "*", "*", None, False, f"harness error: {type(e).__name__}: {e}")
    failed = r.report(t0)
    return 1 if failed or not r.rows else 0


if __name__ == "__main__":
    sys.exit(main())
