#!/usr/bin/env python3
"""PyTorch/transformers baseline for perf/gpu/device-run.sh: the synthetic 1B shape (TinyLlama 1.1B: dim 2048,
hidden 5632, 22 layers, 32 heads, 4 KV heads, vocab 32000) with random weights in float16 on the GPU, greedy
decode tok/s at batch 1 and 100 (prompt of 128 random tokens; decode time = generate(N) - generate(1)).
Writes one JSON object per batch size to --out (and stdout)."""
import argparse, json, time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def timed_generate(model, ids, new_tokens):
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                   pad_token_id=0, eos_token_id=None)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batches", default="1,100")
    args = parser.parse_args()

    config = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                         num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5,
                         rope_theta=10000.0, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device="cuda", dtype=torch.float16).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    results = []
    with torch.inference_mode():
        for batch in (int(b) for b in args.batches.split(",")):
            ids = torch.randint(3, 32000, (batch, args.context), device="cuda")
            timed_generate(model, ids, 2)  # warm-up
            prefill = timed_generate(model, ids, 1)
            total = timed_generate(model, ids, args.steps + 1)
            decode = max(total - prefill, 1e-9)
            row = {"command": "torch-decode", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "batch": batch, "context": args.context, "steps": args.steps, "weight_bytes": weight_bytes,
                   "tok_s": batch * args.steps / decode, "ms_per_step": 1000 * decode / args.steps}
            print(json.dumps(row), flush=True)
            results.append(row)
    with open(args.out, "w") as f:
        for row in results:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
