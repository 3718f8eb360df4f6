#!/usr/bin/env python3
"""BERT encoder as ONNX (Hugging Face BertModel layout), seeded random weights.

    python3 models/transformer.py -o build/models/bert-base.onnx              # BERT-base
    python3 models/transformer.py --layers 24 --hidden 1024 --heads 16 --ffn 4096 -o bert-large.onnx
    python3 models/transformer.py --tiny -o build/models/bert-tiny.onnx

Graph as torch.onnx.export (opset 17) writes HF BERT: Gather embeddings (token, position,
token-type), LayerNormalization, extended attention mask (Unsqueeze, Cast, Sub from 1, Mul
by float32 min, Add to the scores), Q/K/V/O and FFN as MatMul with [K,N] constant weights +
Add bias, head split/merge through Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains,
Softmax, GELU in its Erf form (Div, Erf, Add, Mul, Mul).  Inputs `input_ids`,
`attention_mask` int64 [batch,seq]; output `last_hidden_state` float32 [batch,seq,hidden].
"""

import numpy as np
from onnx import TensorProto, helper

from common import cli_parser, GraphBuilder, make_model, save

FULL = dict(layers=12, hidden=768, heads=12, ffn=3072, vocab=30522, max_pos=512, type_vocab=2)
TINY = dict(layers=2, hidden=64, heads=4, ffn=128, vocab=1000, max_pos=128, type_vocab=2)
MASK_VALUE = float(np.finfo(np.float32).min)  # what HF's get_extended_attention_mask uses


class BertBuilder(GraphBuilder):
    def scalar(self, value, dtype, base):
        return self.const(np.array(value, dtype=dtype), base)

    def dim(self, shape, index, scope):
        """Shape -> Gather(index) -> Unsqueeze: one dim as a 1-element int64 tensor."""
        g = self.node("Gather", [shape, self.scalar(index, np.int64, scope)], f"{scope}/Gather", axis=0)
        return self.node("Unsqueeze", [g, self.const(np.array([0], np.int64), scope)], f"{scope}/Unsqueeze")

    def linear(self, x, scope, wname, k, n):
        """torch Linear on a 3-D input: MatMul with the transposed [K,N] weight, then Add bias."""
        w = self.rng.standard_normal((k, n), dtype=np.float32) * np.float32(1.0 / np.sqrt(k))
        b = (self.rng.standard_normal(n) * 0.02).astype(np.float32)
        # torch names the transposed constant onnx::MatMul_<id>; keep the module name instead
        # so prune --exclude patterns read naturally.
        y = self.node("MatMul", [x, self.init(f"{wname}.weight", w)], f"{scope}/MatMul")
        return self.node("Add", [self.init(f"{wname}.bias", b), y], f"{scope}/Add")

    def layer_norm(self, x, scope, pname, hidden, eps):
        g = (1.0 + 0.1 * self.rng.standard_normal(hidden)).astype(np.float32)
        b = (0.1 * self.rng.standard_normal(hidden)).astype(np.float32)
        return self.node("LayerNormalization", [x, self.init(f"{pname}.weight", g), self.init(f"{pname}.bias", b)],
                         f"{scope}/LayerNormalization", axis=-1, epsilon=eps)

    def split_heads(self, x, scope, heads, head_dim, perm):
        """view(b, s, heads, head_dim).permute(perm), shape from Shape/Gather/Concat."""
        shape = self.node("Shape", [x], f"{scope}/Shape")
        b = self.dim(shape, 0, scope)
        shape2 = self.node("Shape", [x], f"{scope}/Shape")
        s = self.dim(shape2, 1, scope)
        new_shape = self.node("Concat", [b, s, self.const(np.array([heads], np.int64), scope),
                                         self.const(np.array([head_dim], np.int64), scope)], f"{scope}/Concat", axis=0)
        r = self.node("Reshape", [x, new_shape], f"{scope}/Reshape")
        return self.node("Transpose", [r], f"{scope}/Transpose", perm=perm)

    def attention(self, x, mask, li, hidden, heads):
        p, sc = f"encoder.layer.{li}.attention", f"/encoder/layer.{li}/attention"
        head_dim = hidden // heads
        q = self.linear(x, f"{sc}/self/query", f"{p}.self.query", hidden, hidden)
        k = self.linear(x, f"{sc}/self/key", f"{p}.self.key", hidden, hidden)
        v = self.linear(x, f"{sc}/self/value", f"{p}.self.value", hidden, hidden)
        q = self.split_heads(q, f"{sc}/self", heads, head_dim, [0, 2, 1, 3])
        # key.transpose(-1, -2) after the head split: torch's peephole fuses both into one.
        k = self.split_heads(k, f"{sc}/self", heads, head_dim, [0, 2, 3, 1])
        v = self.split_heads(v, f"{sc}/self", heads, head_dim, [0, 2, 1, 3])
        s = self.node("MatMul", [q, k], f"{sc}/self/MatMul")
        s = self.node("Div", [s, self.scalar(np.sqrt(head_dim), np.float32, f"{sc}/self")], f"{sc}/self/Div")
        s = self.node("Add", [s, mask], f"{sc}/self/Add")
        s = self.node("Softmax", [s], f"{sc}/self/Softmax", axis=-1)
        c = self.node("MatMul", [s, v], f"{sc}/self/MatMul")
        c = self.node("Transpose", [c], f"{sc}/self/Transpose", perm=[0, 2, 1, 3])
        shape = self.node("Shape", [c], f"{sc}/self/Shape")
        b = self.dim(shape, 0, f"{sc}/self")
        shape2 = self.node("Shape", [c], f"{sc}/self/Shape")
        sq = self.dim(shape2, 1, f"{sc}/self")
        new_shape = self.node("Concat", [b, sq, self.const(np.array([hidden], np.int64), f"{sc}/self")],
                              f"{sc}/self/Concat", axis=0)
        c = self.node("Reshape", [c, new_shape], f"{sc}/self/Reshape")
        o = self.linear(c, f"{sc}/output/dense", f"{p}.output.dense", hidden, hidden)
        o = self.node("Add", [o, x], f"{sc}/output/Add")
        return self.layer_norm(o, f"{sc}/output/LayerNorm", f"{p}.output.LayerNorm", hidden, 1e-12)

    def gelu(self, x, scope):
        """0.5 * x * (1 + erf(x / sqrt(2))) in the node order torch exports it."""
        d = self.node("Div", [x, self.scalar(1.4142135381698608, np.float32, scope)], f"{scope}/Div")
        e = self.node("Erf", [d], f"{scope}/Erf")
        a = self.node("Add", [e, self.scalar(1.0, np.float32, scope)], f"{scope}/Add")
        m = self.node("Mul", [x, a], f"{scope}/Mul")
        return self.node("Mul", [m, self.scalar(0.5, np.float32, scope)], f"{scope}/Mul")

    def layer(self, x, mask, li, hidden, heads, ffn):
        x = self.attention(x, mask, li, hidden, heads)
        p, sc = f"encoder.layer.{li}", f"/encoder/layer.{li}"
        h = self.linear(x, f"{sc}/intermediate/dense", f"{p}.intermediate.dense", hidden, ffn)
        h = self.gelu(h, f"{sc}/intermediate/intermediate_act_fn")
        o = self.linear(h, f"{sc}/output/dense", f"{p}.output.dense", ffn, hidden)
        o = self.node("Add", [o, x], f"{sc}/output/Add")
        return self.layer_norm(o, f"{sc}/output/LayerNorm", f"{p}.output.LayerNorm", hidden, 1e-12)

    def embeddings(self, vocab, max_pos, type_vocab, hidden):
        rng, sc = self.rng, "/embeddings"
        shape = self.node("Shape", ["input_ids"], "/Shape")
        seq = self.dim(shape, 1, "")
        word = self.init("embeddings.word_embeddings.weight",
                         rng.standard_normal((vocab, hidden), dtype=np.float32))
        pos = self.init("embeddings.position_embeddings.weight",
                        rng.standard_normal((max_pos, hidden), dtype=np.float32))
        typ = self.init("embeddings.token_type_embeddings.weight",
                        rng.standard_normal((type_vocab, hidden), dtype=np.float32))
        # Registered buffers, sliced to the sequence length as BertEmbeddings.forward does.
        pos_ids = self.init("embeddings.position_ids", np.arange(max_pos, dtype=np.int64)[None], param=False)
        type_ids = self.init("embeddings.token_type_ids", np.zeros((1, max_pos), np.int64), param=False)
        zero = self.const(np.array([0], np.int64), sc)
        one = self.const(np.array([1], np.int64), sc)
        t = self.node("Slice", [type_ids, zero, seq, one], f"{sc}/Slice")
        t = self.node("Expand", [t, shape], f"{sc}/Expand")
        e = self.node("Gather", [word, "input_ids"], f"{sc}/word_embeddings/Gather")
        te = self.node("Gather", [typ, t], f"{sc}/token_type_embeddings/Gather")
        e = self.node("Add", [e, te], f"{sc}/Add")
        p = self.node("Slice", [pos_ids, zero, seq, one], f"{sc}/Slice")
        pe = self.node("Gather", [pos, p], f"{sc}/position_embeddings/Gather")
        e = self.node("Add", [e, pe], f"{sc}/Add")
        return self.layer_norm(e, f"{sc}/LayerNorm", "embeddings.LayerNorm", hidden, 1e-12)

    def extended_mask(self, mask_value):
        """(1 - mask[:, None, None, :].float()) * mask_value, broadcast onto [b, h, s, s]."""
        m = self.node("Unsqueeze", ["attention_mask", self.const(np.array([1], np.int64), "")], "/Unsqueeze")
        m = self.node("Unsqueeze", [m, self.const(np.array([2], np.int64), "")], "/Unsqueeze")
        m = self.node("Cast", [m], "/Cast", to=TensorProto.FLOAT)
        m = self.node("Sub", [self.scalar(1.0, np.float32, ""), m], "/Sub")
        return self.node("Mul", [m, self.scalar(mask_value, np.float32, "")], "/Mul")


def build(layers=12, hidden=768, heads=12, ffn=3072, vocab=30522, max_pos=512, type_vocab=2,
          seed=0, mask_value=MASK_VALUE):
    """Return (onnx.ModelProto, n_params)."""
    if hidden % heads:
        raise SystemExit(f"hidden {hidden} is not a multiple of heads {heads}")
    b = BertBuilder(np.random.default_rng(seed))
    x = b.embeddings(vocab, max_pos, type_vocab, hidden)
    mask = b.extended_mask(mask_value)
    for li in range(layers):
        x = b.layer(x, mask, li, hidden, heads, ffn)
    b.nodes[-1].output[0] = "last_hidden_state"
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    am = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])
    return make_model(b.graph("bert", [ids, am], [out])), b.n_params


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("-o", "--output", required=True, help="path of the .onnx to write")
    ap.add_argument("--tiny", action="store_true", help="2 layers, hidden 64, 4 heads, ffn 128, vocab 1000")
    for k in ("layers", "hidden", "heads", "ffn", "vocab", "max_pos", "type_vocab"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, dest=k, default=None,
                        help=f"default {FULL[k]} (tiny {TINY[k]})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mask-value", type=float, default=MASK_VALUE,
                    help="added to masked scores (HF: float32 min; older HF: -10000)")
    a = ap.parse_args(argv)
    cfg = dict(TINY if a.tiny else FULL)
    cfg.update({k: getattr(a, k) for k in FULL if getattr(a, k) is not None})
    model, n = build(seed=a.seed, mask_value=a.mask_value, **cfg)
    save(model, a.output)
    print(f"{a.output}: BERT {cfg['layers']}L/{cfg['hidden']}H/{cfg['heads']}A/ffn {cfg['ffn']}, "
          f"vocab {cfg['vocab']}, {n:,} params, {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
