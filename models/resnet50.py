#!/usr/bin/env python3
"""ResNet-50 v1.5 (torchvision layout) as ONNX, seeded random weights, BatchNorm unfolded.

    python3 models/resnet50.py -o build/models/resnet50.onnx          # 25,557,032 params
    python3 models/resnet50.py --tiny -o build/models/resnet50-tiny.onnx

Graph as torch.onnx.export (opset 17, no BN folding) writes it: Conv, BatchNormalization,
Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm; input `input` [batch,3,H,W],
output `logits` [batch,classes]; node and weight names follow torchvision's modules.
v1.5: the stride of a bottleneck sits on its 3x3 conv, not the first 1x1.
"""
import sys

import numpy as np
from onnx import TensorProto, helper

from common import cli_parser, GraphBuilder, make_model, save

FULL = dict(width=64, blocks=(3, 4, 6, 3), image=224, classes=1000)
TINY = dict(width=16, blocks=(1, 1, 1, 1), image=32, classes=1000)
EXPANSION = 4
FULL_PARAMS = 25_557_032  # torchvision.models.resnet50().parameters()


class ResNetBuilder(GraphBuilder):
    def conv_bn(self, x, mod, bn, cin, cout, k, stride, relu, gamma_scale=1.0):
        """conv (no bias) -> BatchNormalization [-> Relu], torchvision module names."""
        rng = self.rng
        fan_in = cin * k * k
        # He (fan_in) init keeps the pre-BN variance near the input's second moment * 2.
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        wname = self.init(f"{mod}.weight", w)
        prefix = "/" + "/".join(mod_path(mod))
        y = self.node("Conv", [x, wname], f"{prefix}/Conv", dilations=[1, 1], group=1,
                      kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride, stride])
        # Non-trivial BN statistics: the runtime must fold them, not skip them.
        scale = (rng.uniform(0.5, 1.0, cout) * gamma_scale).astype(np.float32)
        bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        mean = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        var = rng.uniform(0.5, 1.5, cout).astype(np.float32)
        names = [self.init(f"{bn}.weight", scale), self.init(f"{bn}.bias", bias),
                 self.init(f"{bn}.running_mean", mean, param=False),
                 self.init(f"{bn}.running_var", var, param=False)]
        bprefix = "/" + "/".join(mod_path(bn))
        y = self.node("BatchNormalization", [y] + names, f"{bprefix}/BatchNormalization",
                      epsilon=1e-5, momentum=0.9)
        if relu:
            y = self.node("Relu", [y], f"{prefix.rsplit('/', 1)[0]}/relu/Relu")
        return y

    def bottleneck(self, x, name, cin, planes, stride):
        cout = planes * EXPANSION
        y = self.conv_bn(x, f"{name}.conv1", f"{name}.bn1", cin, planes, 1, 1, True)
        y = self.conv_bn(y, f"{name}.conv2", f"{name}.bn2", planes, planes, 3, stride, True)
        # Small gamma on the last BN of the residual branch (the zero-init-residual idea,
        # but not zero) so the residual stream stays O(1) through 16 blocks.
        y = self.conv_bn(y, f"{name}.conv3", f"{name}.bn3", planes, cout, 1, 1, False, gamma_scale=0.4)
        if stride != 1 or cin != cout:
            x = self.conv_bn(x, f"{name}.downsample.0", f"{name}.downsample.1", cin, cout, 1, stride, False)
        prefix = "/" + "/".join(mod_path(name))
        y = self.node("Add", [y, x], f"{prefix}/Add")
        return self.node("Relu", [y], f"{prefix}/relu_2/Relu")


def mod_path(mod):
    """'layer1.0.conv1' -> ['layer1', 'layer1.0', 'conv1'] (torch's scope naming)."""
    parts = mod.split(".")
    if not (parts[0].startswith("layer") and len(parts) >= 2):
        return parts
    path = [parts[0], f"{parts[0]}.{parts[1]}"]
    if len(parts) > 3:  # downsample.0 lives in a Sequential: /downsample/downsample.0
        path.append(parts[2])
    if len(parts) > 2:
        path.append(".".join(parts[2:]))
    return path


def build(width=64, blocks=(3, 4, 6, 3), image=224, classes=1000, seed=0):
    """Return (onnx.ModelProto, n_params)."""
    b = ResNetBuilder(np.random.default_rng(seed))
    x = b.conv_bn("input", "conv1", "bn1", 3, width, 7, 2, True)
    x = b.node("MaxPool", [x], "/maxpool/MaxPool", ceil_mode=0, dilations=[1, 1],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    cin = width
    for stage, n in enumerate(blocks):
        planes = width * 2 ** stage
        for i in range(n):
            stride = 2 if (stage > 0 and i == 0) else 1
            x = b.bottleneck(x, f"layer{stage + 1}.{i}", cin, planes, stride)
            cin = planes * EXPANSION
    x = b.node("GlobalAveragePool", [x], "/avgpool/GlobalAveragePool")
    x = b.node("Flatten", [x], "/Flatten", axis=1)
    fc_w = b.rng.standard_normal((classes, cin), dtype=np.float32) * np.float32(1.0 / np.sqrt(cin))
    fc_b = (b.rng.standard_normal(classes) * 0.01).astype(np.float32)
    b.nodes.append(helper.make_node("Gemm", [x, b.init("fc.weight", fc_w), b.init("fc.bias", fc_b)],
                                    ["logits"], name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, image, image])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])
    return make_model(b.graph("resnet50", [inp], [out])), b.n_params


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("-o", "--output", required=True, help="path of the .onnx to write")
    ap.add_argument("--tiny", action="store_true",
                    help="widths /4, one block per stage, 32x32 input (CI size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, default=None)
    ap.add_argument("--image", type=int, default=None, help="input height = width (default 224, tiny 32)")
    a = ap.parse_args(argv)
    cfg = dict(TINY if a.tiny else FULL)
    if a.classes:
        cfg["classes"] = a.classes
    if a.image:
        cfg["image"] = a.image
    model, n = build(seed=a.seed, **cfg)
    if cfg == FULL and n != FULL_PARAMS:
        sys.exit(f"internal error: {n} params, torchvision has {FULL_PARAMS}")
    save(model, a.output)
    print(f"{a.output}: ResNet-50{' (tiny)' if a.tiny else ''}, {n:,} params, "
          f"input [batch,3,{cfg['image']},{cfg['image']}], {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
