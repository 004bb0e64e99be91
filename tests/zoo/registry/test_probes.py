"""Probing attention variants: tiny CPU forwards that never import the compiler, remembered
between processes while the code they ran is unchanged."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch
from torch import nn

from zoo.attention import ATTENTION_KINDS
from zoo.registry import Registry, probes

CHANNEL = ATTENTION_KINDS["channel"]


class Counted(nn.Module):
    """A channel attention that counts its forwards: each probe runs two."""

    forwards = 0

    def __init__(self, channels: int, *, device=None, dtype=None):
        super().__init__()

    def forward(self, x):
        Counted.forwards += 1
        return x


def probed_forwards(cls: type[Counted] = Counted) -> int:
    """Forwards run to make `cls` usable in a new registry, as a new process would."""
    probes._stamp_of.cache_clear()  # a new process reads the code's stamp afresh
    before = Counted.forwards
    registry = Registry()
    registry.add_attention("counted", cls, kind="channel", owner="tests")
    registry.attention("counted").module_class()
    return Counted.forwards - before


def test_a_variant_that_passed_is_not_probed_again_while_its_code_is_unchanged(zoo_cache_dir):
    assert probed_forwards() == 2
    assert probes.cache_file().parent == zoo_cache_dir
    assert probed_forwards() == 0


def test_a_change_to_any_file_of_its_package_probes_it_again(tmp_path, monkeypatch):
    package = tmp_path / "edited_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from tests.zoo.registry.test_probes import Counted\n\n\nclass Edited(Counted):\n    pass\n"
    )
    helper = package / "helper.py"
    helper.write_text("WIDTH = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from edited_plugin import Edited

    assert probed_forwards(Edited) == 2
    assert probed_forwards(Edited) == 0
    helper.write_text("WIDTH = 22\n")  # another file of the package, not the class's own
    assert probed_forwards(Edited) == 2


def test_a_class_defined_in_a_function_is_always_probed():
    class Local(Counted):
        pass

    assert probes.code_stamp(Local) is None


def test_a_cache_that_cannot_be_read_or_written_costs_a_probe_and_nothing_else(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker / "zoo"))
    assert probed_forwards() == 2
    assert probed_forwards() == 2


def test_probing_every_builtin_variant_imports_no_compiler():
    code = textwrap.dedent(
        """
        import sys
        import zoo
        from zoo.registry.attention import probe_attention_class

        for variant in zoo.default_registry().components("attention"):
            probe_attention_class(variant.module_class(), variant.kind, name=variant.name)
        print(sorted(m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_probe_leaves_the_random_numbers_of_a_seeded_build_as_they_were():
    class Drawing(Counted):
        def __init__(self, channels: int, *, device=None, dtype=None):
            super().__init__(channels)
            self.weight = nn.Parameter(torch.randn(channels, device=device))

    torch.manual_seed(0)
    probes._stamp_of.cache_clear()
    registry = Registry()
    registry.add_attention("drawing", Drawing, kind="channel", owner="tests")
    registry.attention("drawing").module_class()  # probed: builds it on the CPU
    after_the_probe = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after_the_probe, torch.rand(3))
