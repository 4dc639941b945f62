# PyTorch twin of crates/train/examples/train_speed.rs: the same GPT-2-layout model and the
# same training step, for bench/train_speed.sh. Adapted from
# ../shared/bench/framework-eval/torch-gpt/gpt.py, changed to match refinery_model::Gpt
# exactly: LM head tied to wte, GELU tanh approximation (HF gelu_new), biases init 0,
# normal(0, 0.02) weights (c_proj: 0.02 / sqrt(2 * n_layer)), LayerNorm eps 1e-5, no dropout,
# CLM loss on logits[:, :-1] vs tokens[:, 1:], AdamW(lr 3e-4, betas 0.9/0.999, eps 1e-8,
# weight_decay 0.01) on every parameter (one group, as the Rust side).
#
# Usage: python bench/train_speed_torch.py [--steps N] [--warmup N] [--batch N]
#        [--device cpu|cuda] [--dtype f32|bf16] [--label NAME]
# Prints: RESULT <label> threads=.. train_step_ms=<median> train_tok_s=<B*T/median>
#         cpu_step_ms=<median process CPU time per step> ...
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, CTX, LAYERS, D, HEADS, LR = 4096, 128, 4, 256, 4, 3e-4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(D, eps=1e-5)
        self.c_attn = nn.Linear(D, 3 * D)
        self.c_proj = nn.Linear(D, D)
        self.ln_2 = nn.LayerNorm(D, eps=1e-5)
        self.c_fc = nn.Linear(D, 4 * D)
        self.mlp_proj = nn.Linear(4 * D, D)

    def forward(self, x, mask):
        b, t, _ = x.shape
        hd = D // HEADS
        q, k, v = self.c_attn(self.ln_1(x)).view(b, t, 3, HEADS, hd).permute(2, 0, 3, 1, 4)
        # Explicit attention (scores, mask, softmax, probs @ v) like refinery's attention.rs,
        # not F.scaled_dot_product_attention.
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask[:t, :t], torch.finfo(att.dtype).min).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D)
        self.wpe = nn.Embedding(CTX, D)
        self.h = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(D, eps=1e-5)
        self.register_buffer("mask", torch.triu(torch.ones(CTX, CTX, dtype=torch.bool), 1))
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * LAYERS))
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        b, t = idx.shape
        x = self.wte(idx) + self.wpe.weight[:t]
        for blk in self.h:
            x = blk(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head, [B, T, V]


def batch_tokens(batch, g):
    pat = torch.randint(0, 64, (batch, 8), generator=g)
    return pat.repeat(1, CTX // 8)[:, :CTX].contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    dev = torch.device(a.device)
    model = GPT().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    x = batch_tokens(a.batch, g).to(dev)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16")

    def step():
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()  # syncs, as into_scalar on the Rust side

    losses, times, cpu_times = [], [], []
    for i in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(step())
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    times.sort()
    med = times[len(times) // 2]
    cpu_med = sorted(cpu_times)[len(cpu_times) // 2]
    label = a.label or f"torch-{a.device}-{a.dtype}"
    print(
        f"RESULT {label} threads={torch.get_num_threads()} train_step_ms={med * 1e3:.1f} "
        f"train_tok_s={a.batch * CTX / med:.0f} cpu_step_ms={cpu_med * 1e3:.1f} loss_first={losses[0]:.4f} loss_last={losses[-1]:.4f} "
        f"torch={torch.__version__}"
    )


if __name__ == "__main__":
    main()
