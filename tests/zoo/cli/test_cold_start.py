"""A command that builds or runs a model never imports the compiler (`torch._dynamo`,
`torch._inductor`): in a fresh process, with the zoo's caches empty and then warm."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from safetensors.torch import save_file

import zoo

VIT = "vit_tiny_patch16_224"
VIT_ARGS = [
    "-a",
    "img_size=32",
    "-a",
    "patch_size=8",
    "-a",
    "embed_dim=48",
    "-a",
    "depth=2",
    "-a",
    "num_heads=3",
]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    from zoo.cli import cli

    codes = [CliRunner().invoke(cli, args).exit_code for args in json.loads(sys.argv[1])]
    compiler = sorted(m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules)
    print(json.dumps([codes, compiler]))
    """
)


def test_create_predict_embed_and_attn_import_no_compiler(tmp_path, images):
    checkpoint = tmp_path / "vit.safetensors"
    model = zoo.create(VIT, img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
    save_file(model.state_dict(), checkpoint)
    loaded = ["--checkpoint", str(checkpoint), "--num-classes", "10", *VIT_ARGS]
    commands = [
        ["create", VIT],
        ["create", "resnet18_cbam", "--device", "meta"],
        ["predict", VIT, str(images["cat"]), *loaded],
        ["embed", VIT, str(images["cat"]), "-o", str(tmp_path / "e.npy"), *loaded],
        ["attn", VIT, str(images["cat"]), "-o", str(tmp_path / "map.png"), *loaded],
    ]
    for run in ("empty caches", "warm caches"):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True, check=True
        )
        codes, compiler = json.loads(done.stdout.splitlines()[-1])
        assert (run, codes, compiler) == (run, [0] * len(commands), [])
        (tmp_path / "e.npy").unlink()
        (tmp_path / "map.png").unlink()


def test_building_a_model_imports_no_pictures_and_no_network():
    script = (
        "import sys, zoo\n"
        "for name in ('vit_tiny_patch16_224', 'cait_xxs24_224', 'resnet18_cbam'):\n"
        "    zoo.create(name, device='meta')\n"
        "print(sorted(m for m in ('PIL', 'huggingface_hub', 'zoo.weights.hub', 'zoo.tasks.maps') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
