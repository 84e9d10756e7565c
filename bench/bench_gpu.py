"""CenterNet-52 on a GPU: training step time and peak memory at batch 8 and
input 511 in fp32, fp16 (AMP, grad scaler) and bf16; inference of one image
with its flip at 511, single scale and at the multi-scale config's scales.

    python bench/bench_gpu.py                  # writes the "gpu" section of BENCHMARKS.md
    python bench/bench_gpu.py --json out.json  # also the raw figures

The network, loss and optimizer are the ones train.py uses (NetworkFactory);
the inputs are random tensors shaped like the sampler's, so the figures
measure the GPU work alone. Each figure is the median of the timed steps
after warm-up steps, with torch.cuda.synchronize around each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from config import load_config  # noqa: E402


def fake_batch(cfg, batch, device):
    """Tensors shaped like one training batch of the sampler."""
    height, width = cfg.db.input_size
    out_h, out_w = cfg.db.output_sizes[0]
    categories, tags = cfg.db.categories, cfg.db.max_tag_len
    generator = torch.Generator().manual_seed(0)

    def heat():
        return (torch.rand(batch, categories, out_h, out_w, generator=generator) > 0.999).float()

    return {
        "image": torch.randn(batch, 3, height, width, generator=generator),
        "tl_tags": torch.randint(0, out_h * out_w, (batch, tags), generator=generator),
        "br_tags": torch.randint(0, out_h * out_w, (batch, tags), generator=generator),
        "ct_tags": torch.randint(0, out_h * out_w, (batch, tags), generator=generator),
        "tl_heatmap": heat(), "br_heatmap": heat(), "ct_heatmap": heat(),
        "tag_mask": torch.arange(tags).expand(batch, tags) < 40,
        "tl_regr": torch.rand(batch, tags, 2, generator=generator),
        "br_regr": torch.rand(batch, tags, 2, generator=generator),
        "ct_regr": torch.rand(batch, tags, 2, generator=generator),
    }


def timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def training(config, precision, channels_last, batch, warmup, steps):
    from nnet.py_factory import NetworkFactory

    cfg = load_config(config, check_data=False,
                      overrides={"system": {"precision": precision, "channels_last": channels_last,
                                            "batch_size": batch}})
    device = torch.device("cuda")
    factory = NetworkFactory(cfg, device)
    data = fake_batch(cfg, batch, device)
    torch.cuda.reset_peak_memory_stats()
    ms = timed(lambda: factory.train_step(data), warmup, steps)
    memory = torch.cuda.max_memory_allocated() / 2 ** 30
    del factory
    torch.cuda.empty_cache()
    return ms, memory


def inference(config, precision, scales, warmup, steps):
    from models import build_network
    from models.py_utils.kp_utils import _decode
    from test.kp_detection import padded_size

    cfg = load_config(config, check_data=False,
                      overrides={"system": {"precision": precision, "channels_last": True}})
    device = torch.device("cuda")
    net = build_network(cfg).to(device).to(memory_format=torch.channels_last).eval()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    side = cfg.db.input_size[0]
    inputs = [torch.randn(2, 3, padded_size(int(side * s)), padded_size(int(side * s)),
                          device=device).contiguous(memory_format=torch.channels_last)
              for s in scales]

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            for images in inputs:
                outputs = [o.float() for o in net.predict(images)]
                _decode(*outputs, K=cfg.db.top_k, kernel=cfg.db.nms_kernel,
                        ae_threshold=cfg.db.ae_threshold, num_dets=cfg.db.num_dets)

    return timed(run, warmup, steps)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="CenterNet-52")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    figures = {"card": torch.cuda.get_device_name(0), "training": {}, "inference": {}}

    def save():
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)

    multi = load_config(f"{args.config}-multi_scale", check_data=False).db.test_scales
    for precision in ("fp32", "fp16", "bf16"):
        figures["inference"][precision] = {
            "single": inference(args.config, precision, [1.0], args.warmup, args.steps)}
        save()
    figures["inference"]["fp32"]["multi"] = inference(args.config, "fp32", multi, 1, 3)
    figures["multi_scales"] = multi
    save()
    for precision in ("fp32", "fp16", "bf16"):
        ms, gib = training(args.config, precision, True, args.batch, args.warmup, args.steps)
        figures["training"][precision] = {"step_ms": ms, "peak_gib": gib}
        print(precision, figures["training"][precision], flush=True)
        save()
    print(json.dumps(figures, indent=1))
    write_report(figures, args)


def write_report(figures, args):
    from bench.report import markdown_table, write_section

    train_rows = [[p, f"{v['step_ms']:.0f}", f"{v['peak_gib']:.1f}",
                   f"{figures['training']['fp32']['step_ms'] / v['step_ms']:.2f}x"]
                  for p, v in figures["training"].items()]
    infer_rows = [[p, f"{v['single']:.1f}",
                   f"{figures['inference']['fp32']['single'] / v['single']:.2f}x"]
                  for p, v in figures["inference"].items()]
    body = (f"Card: {figures['card']}. {args.config}, channels_last, random inputs shaped like "
            f"the sampler's; median of {args.steps} steps after {args.warmup} warm-up steps.\n\n"
            f"Training step (forward, loss, backward, Adam), batch {args.batch} at 511:\n\n"
            + markdown_table(["precision", "step (ms)", "peak memory (GiB)", "speed-up over fp32"],
                             train_rows)
            + "\n\nInference, one image and its flip (batch 2) at 511, network + `_decode`:\n\n"
            + markdown_table(["precision", "ms per image", "speed-up over fp32"], infer_rows)
            + f"\n\nMulti-scale, fp32, scales {figures['multi_scales']} (each with its flip): "
              f"{figures['inference']['fp32']['multi']:.0f} ms per image. The original reports "
              f"270 ms per image for CenterNet-52 on a Tesla P100, a different, older card.")
    write_section("gpu", body)


if __name__ == "__main__":
    main()
