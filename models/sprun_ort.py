#!/usr/bin/env python3
"""Stand-in for the sprun CLI, backed by onnxruntime with all graph optimisations ON.

    python3 models/sprun_ort.py MODEL.onnx [NAME=]FILE ... [-o OUT] [--backend cpu|cuda|auto] [--shape NAME=DIMS]

Same command line, files and exit codes as `build/bin/sprun`, so e2e_check.py can be tried
(`--sprun models/sprun_ort.py`) before sprun runs a model, and so the tolerance is seen
against a second, differently fused implementation.  --backend is accepted and ignored.
"""
import sys

import onnx

from common import cli_parser, parse_shape_args
from reference import load_inputs, write_outputs


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("model")
    ap.add_argument("inputs", nargs="+", metavar="[NAME=]FILE")
    ap.add_argument("-o", "--output", default="out/")
    ap.add_argument("--backend", choices=("cpu", "cuda", "auto"), default="auto")
    ap.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS")
    a = ap.parse_args(argv)
    try:
        import onnxruntime as ort
        model = onnx.load(a.model)
        feeds = load_inputs(model, a.inputs, parse_shape_args(a.shape))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        write_outputs(names, sess.run(names, feeds), a.output)
    except (Exception, SystemExit) as e:
        print(f"sprun_ort: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
