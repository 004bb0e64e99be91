"""Fine-tune a zoo model on a folder of images: a recipe to copy and edit.

    python examples/finetune.py resnet50_cbam --pretrained --train data/train --val data/val \\
        -o finetuned.safetensors
    torchrun --nproc_per_node 8 examples/finetune.py vit_large_patch16_224 --pretrained --fsdp \\
        --train data/train --val data/val --layer-decay 0.75 --checkpoint-dir ckpt -o vit_l.safetensors

Images are read from `DIR/CLASS_NAME/*.jpg` (any format PIL opens), classes in sorted order.
What the recipe does, each in a short function below:

- data: the weights' own eval preprocessing (`zoo.data_config`: size, interpolation, mean,
  std) for validation; for training a random resized crop and a horizontal flip first, in
  PIL, drawn from a generator seeded by (seed, epoch, image), so a resumed run sees the
  same crops;
- model: `zoo.create` (one process, or DDP under torchrun) or `zoo.create_sharded` (FSDP2,
  `--fsdp`: each rank holds and loads its shard only), with a new head for the classes;
  `resnet18_cbam --pretrained` starts from resnet18's published weights, its CBAM modules
  fresh (or `--checkpoint FILE --fresh-modules`, from a file);
- what trains (`--train-what`): everything; the modules the starting weights lack (attention
  added to a pretrained backbone) and the head; every attention module and the head; or the
  head;
- AdamW with weight-decay groups as timm's optimizer factory makes them (1-D parameters and
  the model's `no_weight_decay()` names decay-free), layer-wise learning-rate decay over
  the family's `blocks_in_order()` (`--layer-decay`), a cosine schedule with linear warm-up;
- label smoothing, gradient accumulation, gradient clipping, an EMA of the weights, bf16
  autocast where the device has it, a progress bar, validation accuracy every epoch (after
  recomputing BatchNorm's statistics, with `--precise-bn`);
- checkpoints with `torch.distributed.checkpoint` (`--checkpoint-dir`, `--resume`), which
  save and load sharded and replicated models alike, at any world size;
- the result: one safetensors file, the EMA weights with `--ema`, that
  `zoo create NAME --checkpoint FILE --num-classes K` loads and `zoo export` publishes.
  Its metadata holds the class names (`classes`, JSON); `--labels FILE` also writes them
  one per line, for `zoo predict --labels`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import yaml
from PIL import Image
from torch import nn
from tqdm import tqdm

import zoo

if TYPE_CHECKING:
    from zoo.registry.schema import Preprocessing

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


# ---------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a zoo name: NAME, NAME.TAG, hf-hub:ORG/REPO or an exported folder")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--pretrained", action="store_true", help="start from the name's published weights")
    start.add_argument("--checkpoint", type=Path, help="start from this safetensors file of the model")
    parser.add_argument(
        "--fresh-modules",
        action="store_true",
        help="--checkpoint is a backbone of the model (resnet18's for resnet18_cbam): the modules "
        "it has no tensor of start fresh",
    )
    parser.add_argument(
        "-a",
        "--arg",
        dest="model_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a builder argument (YAML value), e.g. -a drop_path_rate=0.1",
    )
    parser.add_argument("--train", type=Path, required=True, help="the training images, DIR/CLASS/*.jpg")
    parser.add_argument("--val", type=Path, help="the validation images (default: --val-fraction of --train)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the fine-tuned weights (.safetensors)"
    )
    parser.add_argument("--labels", type=Path, help="also write the class names here, one per line")
    parser.add_argument("--force", action="store_true", help="overwrite --output and --labels")

    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--steps", type=int, help="stop after this many optimizer steps (the schedule's length)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per micro-batch and process")
    parser.add_argument("--accum-steps", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument(
        "--min-lr-ratio", type=float, default=0.01, help="the cosine's floor, as a share of --lr"
    )
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--layer-decay", type=float, help="layer-wise lr decay (0.65-0.75 for ViTs)")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--clip-grad", type=float, help="clip the gradients' norm to this")
    parser.add_argument("--ema", type=float, metavar="DECAY", help="keep an EMA of the weights (0.9998)")
    parser.add_argument(
        "--train-what",
        choices=("all", "new", "attention", "head"),
        default="all",
        help="train everything; the modules the starting weights lack and the head; the "
        "attention modules and the head; or the head",
    )
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument(
        "--precise-bn",
        type=int,
        default=0,
        metavar="BATCHES",
        help="recompute BatchNorm statistics over this many batches before validating",
    )

    parser.add_argument(
        "--input-size", type=int, help="train and validate at this size instead of the weights'"
    )
    parser.add_argument("--crop-scale", type=float, nargs=2, default=(0.08, 1.0), metavar=("MIN", "MAX"))
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: on a GPU that has bf16)",
    )
    parser.add_argument("--fsdp", action="store_true", help="shard the model with FSDP2 (under torchrun)")
    parser.add_argument("--device", help="default: this rank's GPU if there is one, else the CPU")
    parser.add_argument("--workers", type=int, default=4, help="data-loading processes per rank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-dir", type=Path, help="save a resumable checkpoint here every epoch")
    parser.add_argument("--save-every", type=int, help="and every this many optimizer steps")
    parser.add_argument(
        "--resume", type=Path, help="a checkpoint, or the --checkpoint-dir of a run (its latest)"
    )
    parser.add_argument(
        "--metrics", type=Path, help="append each step's and epoch's numbers here (JSON lines)"
    )
    args = parser.parse_args(argv)
    args.model_args = dict(_assignment(parser, text) for text in args.model_args)
    return args


def _assignment(parser: argparse.ArgumentParser, text: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        parser.error(f"-a {text}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


# ---------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Launch:
    """This process among the ranks of a torchrun launch (one rank without torchrun)."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def leads(self) -> bool:
        return self.rank == 0


def start(args: argparse.Namespace) -> Launch:
    """Join torchrun's process group, if launched by it, and pick this rank's device."""
    launched = "WORLD_SIZE" in os.environ
    if args.fsdp and not launched:
        raise SystemExit("finetune: error: --fsdp shards over a process group: run under torchrun")
    if args.fsdp and not (args.pretrained or args.checkpoint):
        raise SystemExit("finetune: error: --fsdp loads each rank's shard: give --pretrained or --checkpoint")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if args.device is not None:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    if not launched:
        return Launch(0, 1, device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Launch(dist.get_rank(), dist.get_world_size(), device)


# ---------------------------------------------------------------------------- data


def image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """The class names (sorted sub-folders) and the (image, class index) pairs of `root`."""
    if not root.is_dir():
        raise SystemExit(f"finetune: error: {root}: not a folder of class folders")
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    samples = [
        (path, index)
        for index, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if len(classes) < 2 or not samples:
        raise SystemExit(f"finetune: error: {root}: expected images in two or more class folders")
    return classes, samples


def split_off(samples: list[tuple[Path, int]], fraction: float, seed: int) -> tuple[list, list]:
    """(train, val): every class's images shuffled by `seed`, `fraction` of them held out."""
    train, val = [], []
    for label in sorted({label for _, label in samples}):
        mine = [sample for sample in samples if sample[1] == label]
        random.Random(f"{seed}-{label}").shuffle(mine)
        held = max(1, round(len(mine) * fraction)) if len(mine) > 1 else 0
        val += mine[:held]
        train += mine[held:]
    return train, val


class RandomResizedCrop:
    """A crop of random area (`scale`, a share of the image) and aspect ratio (3/4 to 4/3),
    resized to `size` (height, width) with the weights' interpolation, as in the Inception
    training recipe; drawn from the `random.Random` given."""

    def __init__(self, size: tuple[int, int], scale: tuple[float, float], interpolation: str) -> None:
        self.size = size
        self.scale = scale
        self.resample = {
            "nearest": Image.Resampling.NEAREST,
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
        }[interpolation]

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        width, height = image.size
        box = self._box(width, height, rng)
        return image.resize((self.size[1], self.size[0]), self.resample, box=box)

    def _box(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        area = width * height
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                left, top = rng.randint(0, width - w), rng.randint(0, height - h)
                return left, top, left + w, top + h
        side = min(width, height)  # the centre square when no draw fits
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side


class Images(torch.utils.data.Dataset):
    """(image tensor, class index) pairs. With `crop`, each image is cropped and flipped at
    random (seeded by seed, epoch and index), then normalised; else eval preprocessing."""

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        preprocessing: Preprocessing,
        *,
        crop: RandomResizedCrop | None = None,
        seed: int = 0,
    ) -> None:
        self.samples = samples
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        # A crop of the input size: normalised without resizing again.
        unresized = preprocessing.model_copy(update={"crop_pct": 1.0})
        self.transform = zoo.transforms(unresized if crop is not None else preprocessing)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = zoo.load_image(path)
        if self.crop is not None:
            rng = random.Random(f"{self.seed}-{self.epoch}-{index}")
            image = self.crop(image, rng)
            if rng.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.transform(image), label


def preprocessing_of(args: argparse.Namespace) -> Preprocessing:
    """The weights' eval preprocessing, at `--input-size` if given."""
    config = zoo.data_config(args.model, model_args=args.model_args)
    if args.input_size is not None:
        config = config.model_copy(
            update={"input_size": (config.input_size[0], args.input_size, args.input_size)}
        )
    return config


def train_batches(
    dataset: Images, launch: Launch, args: argparse.Namespace, epoch: int, skip: int
) -> torch.utils.data.DataLoader:
    """This rank's micro-batches of an epoch, in an order fixed by seed and epoch, the first
    `skip` left out (a resumed run)."""
    dataset.epoch = epoch
    sampler = torch.utils.data.DistributedSampler(
        dataset, num_replicas=launch.world_size, rank=launch.rank, shuffle=True, seed=args.seed
    )
    sampler.set_epoch(epoch)
    batches = list(torch.utils.data.BatchSampler(sampler, args.batch_size, drop_last=False))[skip:]
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=args.workers)


def micro_batches_per_epoch(dataset: Images, launch: Launch, batch_size: int) -> int:
    return math.ceil(math.ceil(len(dataset) / launch.world_size) / batch_size)


# ---------------------------------------------------------------------------- model


def initial_model(args: argparse.Namespace, num_classes: int, launch: Launch) -> nn.Module:
    """The model to fine-tune, with the weights it starts from and a head for the classes.

    With `--pretrained`, a name without weights of its own starts from those it borrows
    (`resnet18_cbam` from `resnet18.a1_in1k`), its new modules initialised fresh; what was
    loaded and what is new is in `model.load_report`.
    """
    torch.manual_seed(args.seed)  # the same new head on every rank
    create = zoo.create_sharded if args.fsdp else zoo.create
    return create(
        args.model,
        pretrained=args.pretrained,
        checkpoint=args.checkpoint,
        fresh_modules=args.fresh_modules,
        num_classes=num_classes,
        device=launch.device,
        **args.model_args,
    )


def classifier_names(model: nn.Module) -> tuple[str, ...]:
    """The modules of the classifier head (the `HasClassifier` hook of the family contract)."""
    return tuple(getattr(model, "classifier_names", ()))


def attention_module_names(model: nn.Module) -> set[str]:
    """The submodules that are attention variants registered with the zoo (CBAM, SE, ...)."""
    kinds = tuple(variant.loaded for variant in zoo.default_registry().components("attention"))
    return {name for name, module in model.named_modules() if name and isinstance(module, kinds)}


def new_module_names(model: nn.Module) -> set[str]:
    """The modules the starting weights had no tensor of (attention added to a backbone)."""
    report = getattr(model, "load_report", None)
    return set(report.new_modules) if report is not None else set()


def choose_trainable(model: nn.Module, what: str) -> None:
    """Freeze what is not trained: `all` trains everything; `new` the modules the starting
    weights lacked (attention added to a pretrained backbone) and the head; `attention` every
    attention module and the head; `head` the head alone."""
    if what == "all":
        return
    chosen = {"new": new_module_names, "attention": attention_module_names, "head": lambda _: set()}[what]
    kept = set(classifier_names(model)) | chosen(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_within_any(name, kept))


def _within_any(name: str, prefixes: Sequence[str] | set[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def block_layers(model: nn.Module) -> tuple[int, dict[str, int]]:
    """For layer-wise decay: the number of blocks and each parameter's layer, 0 for what
    comes before the first block (embeddings), i + 1 within block i, then the blocks' number
    + 1 for what follows (final norm, head). Blocks are the family's `blocks_in_order()`."""
    if not callable(getattr(model, "blocks_in_order", None)):
        raise SystemExit(f"finetune: error: {type(model).__name__} lists no blocks: --layer-decay needs them")
    names = {id(module): name for name, module in model.named_modules()}
    prefixes = [names[id(block)] for block in model.blocks_in_order()]
    layers, past_blocks = {}, False
    for name, _ in model.named_parameters():
        block = next((i for i, prefix in enumerate(prefixes) if _within_any(name, [prefix])), None)
        past_blocks = past_blocks or block is not None
        layers[name] = block + 1 if block is not None else (len(prefixes) + 1 if past_blocks else 0)
    return len(prefixes), layers


def parameter_groups(model: nn.Module, args: argparse.Namespace) -> list[dict[str, Any]]:
    """AdamW's groups, as timm's optimizer factory makes them: 1-D parameters (biases,
    norms) and the model's `no_weight_decay()` names without weight decay; with
    `--layer-decay d`, layer l of L + 1 at `lr * d ** (L + 1 - l)`."""
    skip = set(model.no_weight_decay()) if callable(getattr(model, "no_weight_decay", None)) else set()
    depth, layers = block_layers(model) if args.layer_decay is not None else (0, {})
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay_free = parameter.ndim <= 1 or name in skip
        layer = layers.get(name, 0)
        scale = args.layer_decay ** (depth + 1 - layer) if args.layer_decay is not None else 1.0
        group = groups.setdefault(
            (layer, decay_free),
            {"params": [], "weight_decay": 0.0 if decay_free else args.weight_decay, "lr": args.lr * scale},
        )
        group["params"].append(parameter)
    return list(groups.values())


def cosine_with_warmup(warmup: int, total: int, floor: float):
    """The learning-rate factor at each step: linear warm-up, then a cosine down to `floor`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class WeightAverage:
    """An exponential moving average of the weights, with timm's warm-up (the decay is at
    most (1 + step) / (10 + step)): parameters averaged, buffers (BatchNorm statistics)
    copied. Works on sharded parameters (each rank averages its own shard)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.tensors = {key: t.detach().clone() for key, t in _weights(model)}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        parameters = {key for key, _ in model.named_parameters()}
        for key, tensor in _weights(model):
            average = self.tensors[key]
            if key in parameters and tensor.is_floating_point():
                average.lerp_(tensor.detach(), 1 - decay)
            else:
                average.copy_(tensor)

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """The model holds the averaged weights inside, its own again after; buffers changed
        inside (BatchNorm statistics recomputed) are kept in the average."""
        own = {key: t.detach().clone() for key, t in _weights(model)}
        _assign(model, self.tensors)
        try:
            yield
        finally:
            for key, buffer in model.named_buffers():
                self.tensors[key].copy_(buffer)
            _assign(model, own)


def _weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]


@torch.no_grad()
def _assign(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    for key, tensor in _weights(model):
        tensor.copy_(values[key])


# ---------------------------------------------------------------------------- checkpoints


class TrainState:
    """What a resumed run needs, for `torch.distributed.checkpoint` (its `Stateful`
    protocol): model and optimizer (sharded or not, by `get_state_dict`), schedule, EMA,
    and the optimizer steps done."""

    def __init__(self, model, optimizer, scheduler, average: WeightAverage | None) -> None:
        self.model, self.optimizer, self.scheduler, self.average = model, optimizer, scheduler, average
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model, optimizer = get_state_dict(self.model, self.optimizer)
        return {
            "model": model,
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "ema": self.average.tensors if self.average is not None else {},
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_state_dict

        set_state_dict(
            self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
        )
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None:
            for key, tensor in state["ema"].items():
                self.average.tensors[key].copy_(tensor)
        self.step = state["step"]


def save_checkpoint(state: TrainState, folder: Path) -> None:
    import torch.distributed.checkpoint as dcp

    dcp.save({"train": state}, checkpoint_id=folder / f"step-{state.step:08d}")


def resume(state: TrainState, path: Path, args: argparse.Namespace) -> None:
    """Load a checkpoint: `path` itself, or the latest `step-*` in it. The run's own
    `--checkpoint-dir` may hold none yet (the first start of a job torchrun restarts):
    the run then starts from the beginning."""
    import torch.distributed.checkpoint as dcp

    if not (path / ".metadata").exists():
        saved = sorted(path.glob("step-*/.metadata"))
        if not saved and path == args.checkpoint_dir:
            return
        if not saved:
            raise SystemExit(f"finetune: error: {path}: no checkpoint to resume from")
        path = saved[-1].parent
    dcp.load({"train": state}, checkpoint_id=path)


def full_state(model: nn.Module, launch: Launch, sharded: bool) -> dict[str, torch.Tensor]:
    """The whole model's tensors on the CPU, on rank 0 (gathered from the shards)."""
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=options)
    return {key: t.detach().cpu() for key, t in model.state_dict().items()} if launch.leads else {}


def write_weights(state: dict[str, torch.Tensor], args: argparse.Namespace, classes: list[str]) -> None:
    """The result, whole or not at all: a safetensors file with the class names in its metadata."""
    from safetensors.torch import save_file

    metadata = {
        "model": args.model,
        "classes": json.dumps(classes),
        "model_args": json.dumps(args.model_args),
    }
    partial = args.output.with_name(args.output.name + ".partial")
    save_file({key: t.contiguous() for key, t in state.items()}, str(partial), metadata=metadata)
    os.replace(partial, args.output)
    if args.labels is not None:
        args.labels.write_text("".join(f"{name}\n" for name in classes))


# ---------------------------------------------------------------------------- training


def autocast(args: argparse.Namespace, device: torch.device):
    enabled = args.amp if args.amp is not None else device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def mean_over_ranks(value: torch.Tensor, launch: Launch) -> float:
    if launch.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= launch.world_size
    return float(value)


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: Iterable, launch: Launch, args: argparse.Namespace):
    """Precise BatchNorm (Wu and Johnson, "Rethinking BatchNorm", 2021): the statistics as the
    plain average over `--precise-bn` training batches of the current weights, not the running
    average of weights long gone. It matters most where new modules (an attention inserted
    in a pretrained backbone) change what every later BatchNorm sees. Ranks average theirs."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    if not norms or args.precise_bn <= 0:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    model.train()
    for seen, (images, _) in enumerate(batches):
        if seen == args.precise_bn:
            break
        with autocast(args, launch.device):
            model(images.to(launch.device))
    _reshard(model)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        if launch.world_size > 1:
            for statistic in (norm.running_mean, norm.running_var):
                dist.all_reduce(statistic)
                statistic /= launch.world_size


@torch.no_grad()
def accuracy(model: nn.Module, dataset: Images, launch: Launch, args: argparse.Namespace) -> float:
    """Top-1 accuracy over the whole set, each rank taking every world_size-th image. Every
    rank runs as many batches (a short share is padded and the padding not counted): a
    sharded model needs every rank in every forward."""
    model.eval()
    per_rank = math.ceil(len(dataset) / launch.world_size)
    indices = [launch.rank + i * launch.world_size for i in range(per_rank)]
    counts = torch.zeros(2, device=launch.device)
    for start in range(0, per_rank, args.batch_size):
        chosen = indices[start : start + args.batch_size]
        images, labels = zip(*(dataset[i % len(dataset)] for i in chosen), strict=True)
        counted = torch.tensor([i < len(dataset) for i in chosen], device=launch.device)
        with autocast(args, launch.device):
            logits = model(torch.stack(images).to(launch.device))
        correct = logits.argmax(-1) == torch.tensor(labels, device=launch.device)
        counts += torch.stack([(correct & counted).sum(), counted.sum()])
    if launch.world_size > 1:
        dist.all_reduce(counts)
    _reshard(model)
    model.train()
    return float(counts[0] / counts[1])


def _reshard(model: nn.Module) -> None:
    """FSDP2 leaves the root's parameters gathered after a forward without backward."""
    if callable(getattr(model, "reshard", None)):
        model.reshard()


def train(args: argparse.Namespace) -> dict[str, float]:
    launch = start(args)
    for path in (args.output, args.labels):
        if path is not None and path.exists() and not args.force:
            raise SystemExit(f"finetune: error: {path} exists: pass --force to overwrite it")
    classes, samples = image_folder(args.train)
    if args.val is not None:
        val_classes, val_samples = image_folder(args.val)
        if not set(val_classes) <= set(classes):
            raise SystemExit(f"finetune: error: {args.val} has classes {args.train} does not have")
        val_samples = [(path, classes.index(val_classes[label])) for path, label in val_samples]
    else:
        samples, val_samples = split_off(samples, args.val_fraction, args.seed)
    preprocessing = preprocessing_of(args)
    crop = RandomResizedCrop(
        preprocessing.input_size[1:], tuple(args.crop_scale), preprocessing.interpolation
    )
    train_set = Images(samples, preprocessing, crop=crop, seed=args.seed)
    val_set = Images(val_samples, preprocessing)

    model = initial_model(args, len(classes), launch)
    choose_trainable(model, args.train_what)
    if args.grad_checkpointing:
        model.set_grad_checkpointing(True)
    optimizer = torch.optim.AdamW(parameter_groups(model, args), lr=args.lr, weight_decay=args.weight_decay)
    per_epoch = math.ceil(micro_batches_per_epoch(train_set, launch, args.batch_size) / args.accum_steps)
    total = args.steps if args.steps is not None else args.epochs * per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(args.warmup_steps, total, args.min_lr_ratio)
    )
    average = WeightAverage(model, args.ema) if args.ema is not None else None
    state = TrainState(model, optimizer, schedule, average)
    if args.resume is not None:
        resume(state, args.resume, args)
    wrapped = model
    if launch.world_size > 1 and not args.fsdp:
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[launch.device] if launch.device.type == "cuda" else None
        )
    loss_of = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    metrics = _Metrics(args.metrics if launch.leads else None)
    report, saved = {}, state.step
    while state.step < total:
        epoch, done_in_epoch = divmod(state.step, per_epoch)
        batches = train_batches(train_set, launch, args, epoch, done_in_epoch * args.accum_steps)
        bar = tqdm(
            batches, desc=f"epoch {epoch + 1}", disable=not launch.leads, leave=False, dynamic_ncols=True
        )
        window: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index, batch in enumerate(bar):
            window.append(batch)
            last = index == len(batches) - 1
            if len(window) < args.accum_steps and not last:
                continue
            lr = max(group["lr"] for group in optimizer.param_groups)  # the top layers'
            loss = _optimizer_step(wrapped, model, window, loss_of, optimizer, args, launch, state.step)
            window = []
            schedule.step()
            state.step += 1
            if average is not None:
                average.update(model, state.step)
            loss = mean_over_ranks(loss, launch)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            metrics.write(step=state.step, epoch=epoch + 1, loss=loss, lr=lr)
            if args.checkpoint_dir is not None and args.save_every and state.step % args.save_every == 0:
                save_checkpoint(state, args.checkpoint_dir)
                saved = state.step
            if state.step >= total:
                break
        bn_batches = train_batches(train_set, launch, args, epoch, 0) if args.precise_bn else ()
        recompute_batchnorm(model, bn_batches, launch, args)
        report = {"epoch": epoch + 1, "val_accuracy": accuracy(wrapped, val_set, launch, args)}
        if average is not None:
            with average.swapped_in(model):
                recompute_batchnorm(model, bn_batches, launch, args)
                report["ema_val_accuracy"] = accuracy(wrapped, val_set, launch, args)
        metrics.write(**report)
        if launch.leads:
            shown = ", ".join(f"{key} {value:.1%}" for key, value in report.items() if key != "epoch")
            print(f"epoch {epoch + 1}: {shown} ({len(val_set)} validation images)", flush=True)
        if args.checkpoint_dir is not None and state.step % per_epoch == 0 and saved != state.step:
            save_checkpoint(state, args.checkpoint_dir)
            saved = state.step

    with average.swapped_in(model) if average is not None else nullcontext():
        weights = full_state(model, launch, args.fsdp)
    if launch.leads:
        write_weights(weights, args, classes)
        print(
            f"wrote {args.output}: {args.model} with {len(classes)} classes ({', '.join(classes[:5])}"
            f"{', ...' if len(classes) > 5 else ''})"
        )
    if launch.world_size > 1:
        dist.barrier()  # no rank leaves while another's last messages are in flight
        dist.destroy_process_group()
    return report


def _optimizer_step(wrapped, model, window, loss_of, optimizer, args, launch, step) -> torch.Tensor:
    """Forward and backward over the micro-batches of one step (gradients synchronised on
    the last only), then the update. Returns the step's mean loss on this rank."""
    torch.manual_seed(hash((args.seed, step, launch.rank)))  # dropout as in an uninterrupted run
    total = torch.zeros((), device=launch.device)
    for position, (images, labels) in enumerate(window):
        last = position == len(window) - 1
        with _gradient_sync(wrapped, last), autocast(args, launch.device):
            logits = wrapped(images.to(launch.device, non_blocking=True))
            loss = loss_of(logits.float(), labels.to(launch.device)) / len(window)
        loss.backward()
        total += loss.detach()
    if args.clip_grad is not None:
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], args.clip_grad)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def _gradient_sync(wrapped: nn.Module, enabled: bool):
    """Gradients reduced across ranks on this backward or kept local (DDP's `no_sync`,
    FSDP2's `set_requires_gradient_sync`)."""
    if isinstance(wrapped, nn.parallel.DistributedDataParallel):
        return nullcontext() if enabled else wrapped.no_sync()
    if callable(getattr(wrapped, "set_requires_gradient_sync", None)):
        wrapped.set_requires_gradient_sync(enabled)
    return nullcontext()


class _Metrics:
    """Numbers appended to a JSON-lines file, if one is given."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, **numbers: float) -> None:
        if self.path is not None:
            with self.path.open("a") as file:
                file.write(json.dumps(numbers) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        train(args)
    except zoo.ZooError as error:
        raise SystemExit(f"finetune: error: {error}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
