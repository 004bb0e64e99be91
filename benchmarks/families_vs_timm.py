"""Inference throughput of the zoo's image families against timm's.

For each family, builds the zoo model (`zoo.create(name)`, random weights, eval) and
timm's model of the same architecture (`timm.create_model(name, pretrained=False)`),
checks that both have the same number of parameters, gives the zoo model timm's random
weights (the layouts match name for name; the same numbers on both sides, as published
weights would be, so that neither runs on values that happen to be cheaper), and times
inference (images/s) in one process: zoo and timm runs alternate, several rounds, and the median of each is
kept. float32 always; bfloat16 only where the CPU computes it natively
(`zoo.bench.cpu_supports`). Everything runs under `torch.inference_mode()` on the CPU
with a fixed thread count. The goal is at least 1.0x timm for every family. With
`--channels-last`, the CNN families (EfficientNet, MobileNetV3, RegNetY) run in the
channels-last memory format, theirs and ours alike. `--clock cpu` times the process's CPU
seconds (all its threads together) instead of wall-clock seconds: on a machine shared with
other work it measures the work each model does, which other processes do not inflate.

timm is not a dependency of the zoo; without it this prints one line and exits 0. With
the CPU torch, timm needs the torchvision stand-in (see the shared benchmark notes):

    .venv/bin/pip install --no-deps timm
    PYTHONPATH=../shared/bench/torchvision_shim .venv/bin/python \\
        benchmarks/families_vs_timm.py [--families deit,swin] [--batch 8] [--rounds 5] \\
        [--dtypes float32,bfloat16] [--threads 2] [--channels-last] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

# family -> (zoo name, timm name, extra arguments given to both)
TRANSFORMERS = {"deit", "dinov2", "clip", "swin", "swin_s3", "cait", "siglip_map", "aimv2", "beit3"}
TRANSFORMERS |= {"vit_parallel", "vit_diff", "vit_diff_parallel", "vit_res_post"}
FAMILIES: dict[str, tuple[str, str, dict]] = {
    "deit": ("deit_small_patch16_224", "deit_small_patch16_224", {}),
    "dinov2": ("vit_small_patch14_dinov2", "vit_small_patch14_dinov2", {"img_size": 224}),
    "clip": ("vit_base_patch16_clip_224", "vit_base_patch16_clip_quickgelu_224", {}),
    "swin": ("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224", {}),
    "cait": ("cait_xxs24_224", "cait_xxs24_224", {}),
    "efficientnet": ("efficientnet_b0", "efficientnet_b0", {}),
    "mobilenetv3": ("mobilenetv3_large_100", "mobilenetv3_large_100", {}),
    "regnety": ("regnety_032", "regnety_032", {}),
    "sknet": ("skresnet18", "skresnet18", {}),
    "resnest": ("resnest50d", "resnest50d", {}),
    "botnet": ("botnet26t_256", "botnet26t_256", {}),
    "mobilenetv4": ("mobilenetv4_hybrid_medium", "mobilenetv4_hybrid_medium", {}),
    "lcnet": ("lcnet_100", "lcnet_100", {}),
    "repvgg": ("repvgg_a2", "repvgg_a2", {}),
    "mobileone": ("mobileone_s1", "mobileone_s1", {}),
    "gcresnext": ("gcresnext26ts", "gcresnext26ts", {}),
    "regnetz_evos": ("regnetz_c16_evos", "regnetz_c16_evos", {}),
    "resnet_clip": ("resnet50_clip", "resnet50_clip", {}),
    "swin_s3": ("swin_tiny_patch4_window7_224", "swin_s3_tiny_224", {"window_size": [7, 7, 14, 7]}),
    "tf_efficientnet": ("tf_efficientnet_b0", "tf_efficientnet_b0", {}),
    "efficientnetv2": ("efficientnetv2_rw_t", "efficientnetv2_rw_t", {}),
    "mixnet": ("mixnet_s", "mixnet_s", {}),
    "condconv": ("tf_efficientnet_cc_b0_4e", "tf_efficientnet_cc_b0_4e", {}),
    "mobilenetv1": ("mobilenetv1_100", "mobilenetv1_100", {}),
    "gc_efficientnetv2": ("gc_efficientnetv2_rw_t", "gc_efficientnetv2_rw_t", {}),
    "efficientnet_evonorm": ("test_efficientnet_evos", "test_efficientnet_evos", {}),
    "siglip_map": ("vit_base_patch16_siglip_224", "vit_base_patch16_siglip_224", {"num_classes": 0}),
    "aimv2": ("aimv2_large_patch14_224", "aimv2_large_patch14_224", {"num_classes": 0}),
    "beit3": ("beit3_base_patch16_224", "beit3_base_patch16_224", {"num_classes": 1000}),
    "vit_parallel": ("vit_pwee_patch16_reg1_gap_256", "vit_pwee_patch16_reg1_gap_256", {}),
    "vit_diff": ("vit_dwee_patch16_reg1_gap_256", "vit_dwee_patch16_reg1_gap_256", {}),
    "vit_diff_parallel": ("vit_dpwee_patch16_reg1_gap_256", "vit_dpwee_patch16_reg1_gap_256", {}),
    "vit_res_post": ("vit_base_patch16_rpn_224", "vit_base_patch16_rpn_224", {}),
    "resnext": ("resnext50_32x4d", "resnext50_32x4d", {}),
    "resnet_blur": ("resnetblur50", "resnetblur50", {}),
    "resnet_gn": ("resnet50_gn", "resnet50_gn", {}),
    "regnetv": ("regnetv_064", "regnetv_064", {}),  # pre-activation blocks, average-pool shortcuts
    "regnetz": ("regnetz_040_h", "regnetz_040_h", {}),  # linear-output inverted blocks, final conv
}
# the families channels-last applies to: every CNN
CNNS = {name for name in FAMILIES if name not in TRANSFORMERS}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each, alternated")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="the CNNs in channels-last format")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall-clock or CPU seconds")
    args = parser.parse_args()
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in args.families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    return args


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def time_once(model, x, clock=time.perf_counter) -> float:
    """Seconds of one forward pass, by `clock`."""
    start = clock()
    model(x)
    return clock() - start


def main() -> int:
    args = parse_args()
    try:
        import timm
    except Exception as error:  # timm missing, or its torchvision import failing
        print(f"timm cannot be imported ({type(error).__name__}: {error}); nothing to compare")
        return 0

    import torch

    import zoo
    from zoo.bench import cpu_supports

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dtypes = []
    for name in args.dtypes:
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype):
            sys.exit(f"unknown dtype {name!r}")
        if not cpu_supports(dtype):
            print(f"{name}: skipped, this CPU does not compute it natively")
            continue
        dtypes.append((name, dtype))

    print(
        f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, "
        f"batch {args.batch}, {args.rounds} rounds (median), inference_mode, CPU"
        + (", CNNs channels-last" if args.channels_last else "")
        + (", CPU seconds" if args.clock == "cpu" else "")
    )
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rows = []
    for family in args.families:
        zoo_name, timm_name, extra = FAMILIES[family]
        ours = zoo.create(zoo_name, **extra).eval()
        theirs = timm.create_model(timm_name, pretrained=False, **extra).eval()
        n_ours, n_theirs = param_count(ours), param_count(theirs)
        if n_ours != n_theirs:
            print(f"{family}: parameter counts differ: zoo {n_ours:,}, timm {n_theirs:,}")
            rows.append((family, "-", None, None))
            continue
        ours.load_state_dict(theirs.state_dict())
        print(f"{family}: {n_ours:,} parameters in both, the same weights")
        size = extra.get("img_size") or zoo.data_config(zoo_name).input_size[-1]  # published size
        channels_last = args.channels_last and family in CNNS
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for dtype_name, dtype in dtypes:
            pair = (("zoo", ours), ("timm", theirs))
            models = {who: model.to(dtype, memory_format=memory_format) for who, model in pair}
            x = torch.randn(args.batch, 3, size, size, dtype=dtype).contiguous(memory_format=memory_format)
            times: dict[str, list[float]] = {"zoo": [], "timm": []}
            with torch.inference_mode():
                for _ in range(args.warmup):
                    for model in models.values():
                        model(x)
                for round_ in range(args.rounds):
                    # alternate which goes first so neither always runs on a warmer cache
                    order = ("zoo", "timm") if round_ % 2 == 0 else ("timm", "zoo")
                    for who in order:
                        times[who].append(time_once(models[who], x, clock))
            speed = {who: args.batch / statistics.median(t) for who, t in times.items()}
            rows.append((family, dtype_name, speed["zoo"], speed["timm"]))
        del ours, theirs

    print()
    print("| family | dtype | zoo images/s | timm images/s | zoo/timm |")
    print("| --- | --- | --- | --- | --- |")
    for family, dtype_name, ours_speed, theirs_speed in rows:
        if ours_speed is None:
            print(f"| {family} | {dtype_name} | - | - | parameter counts differ |")
            continue
        ratio = ours_speed / theirs_speed
        flag = "" if ratio >= 1.0 else " (below 1.0x)"
        print(f"| {family} | {dtype_name} | {ours_speed:.1f} | {theirs_speed:.1f} | {ratio:.2f}x{flag} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
