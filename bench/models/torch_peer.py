#!/usr/bin/env python3
"""PyTorch peers of the dense benchmark: the same architectures with random weights.

    python3 bench/models/torch_peer.py [--runs 200] [--json out.json]

ResNet-50 (torchvision, fp16, channels_last, cudnn.benchmark) and a BERT-base encoder
written here as HF's BertModel computes it (Gather embeddings, LayerNorm, erf GELU,
additive mask), both eager and replayed from a CUDA graph. Median and p90 of CUDA-event
timings after warm-up, device time only (inputs already on the GPU).
"""
import argparse
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, heads, ffn):
        super().__init__()
        self.h, self.heads = h, heads
        self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(h, eps=1e-12), nn.LayerNorm(h, eps=1e-12)
        self.i, self.out = nn.Linear(h, ffn), nn.Linear(ffn, h)

    def forward(self, x, mask):
        b, s, h = x.shape
        d = h // self.heads
        q = self.q(x).view(b, s, self.heads, d).transpose(1, 2)
        k = self.k(x).view(b, s, self.heads, d).transpose(1, 2)
        v = self.v(x).view(b, s, self.heads, d).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1)
        c = (a @ v).transpose(1, 2).reshape(b, s, h)
        x = self.ln1(self.o(c) + x)
        return self.ln2(self.out(F.gelu(self.i(x))) + x)


class Bert(nn.Module):
    def __init__(self, layers=12, h=768, heads=12, ffn=3072, vocab=30522, max_pos=512):
        super().__init__()
        self.word, self.pos, self.typ = nn.Embedding(vocab, h), nn.Embedding(max_pos, h), nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12)
        self.layers = nn.ModuleList(Layer(h, heads, ffn) for _ in range(layers))

    def forward(self, ids, mask):
        s = ids.shape[1]
        pos = torch.arange(s, device=ids.device)
        x = self.ln(self.word(ids) + self.typ(torch.zeros_like(ids)) + self.pos(pos)[None])
        m = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, m)
        return x


def time_fn(fn, runs, warmup=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1000.0)
    ts.sort()
    return ts[len(ts) // 2], ts[min(len(ts) - 1, len(ts) * 9 // 10)]


def graphed(fn):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", default=None)
    ap.add_argument("--resnet-batches", default="1,32,128")
    ap.add_argument("--bert-shapes", default="1x128,32x128")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    rows = []
    import torchvision
    r50 = torchvision.models.resnet50().to(dev).half().eval().to(memory_format=torch.channels_last)
    for b in [int(x) for x in a.resnet_batches.split(",") if x]:
        x = torch.randn(b, 3, 224, 224, device=dev).half().to(memory_format=torch.channels_last)
        with torch.inference_mode():
            fn = lambda: r50(x)
            e = time_fn(fn, a.runs)
            g = time_fn(graphed(fn), a.runs)
        rows.append(dict(model="resnet50", shape=f"b{b}", eager_med=e[0], eager_p90=e[1], graph_med=g[0], graph_p90=g[1]))
        print(rows[-1], flush=True)
    bert = Bert().to(dev).half().eval()
    for shp in [s for s in a.bert_shapes.split(",") if s]:
        b, s = (int(t) for t in shp.split("x"))
        ids = torch.randint(0, 30522, (b, s), device=dev)
        mask = torch.ones(b, s, dtype=torch.int64, device=dev)
        with torch.inference_mode():
            fn = lambda: bert(ids, mask)
            e = time_fn(fn, a.runs)
            g = time_fn(graphed(fn), a.runs)
        rows.append(dict(model="bert-base", shape=f"b{b}s{s}", eager_med=e[0], eager_p90=e[1], graph_med=g[0], graph_p90=g[1]))
        print(rows[-1], flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
