"""Every runnable example in README.md and docs/*.md runs, and does what the page says.

- ```python blocks: each page's blocks run in order, in one namespace per page, in a
  temporary working directory that holds the input files the page names (`INPUTS`).
- ```console blocks: each `zoo ...` command (`$ zoo ...` where the block shows output) runs
  through click's `CliRunner` on `zoo.cli.cli`, in a temporary working directory. It must
  exit 0, unless the output shown has a `zoo: error: ...` line: then it must fail. The
  `zoo: ...` lines shown (errors, info) must be exactly its stderr, and the other lines shown
  must appear in its stdout, in order; in both, `...` and `<placeholder>` stand for any text.
- Everything runs against the test Hub server (`hub` in tests/conftest.py), never the
  network or the real cache. A block marked `<!-- hub: NAME[.TAG] ... -->` on the line
  above its fence is run once the server serves random weights, made here, for those tags
  at the repositories the registry names; `hf-hub:ORG/REPO` there is a repository in timm's
  format: the `config.json` kept in tests/data/hub_configs (`ORG__REPO.config.json`) and
  random weights of the model it describes.
- A block that cannot run here is marked `<!-- not run: REASON -->` on the line above its
  fence, and is reported as skipped with that reason. A console block with a command other
  than `zoo` (set-up commands, benchmarks) must be marked.

Other fences (yaml, toml, json, text, plain) are data or illustrations and are not run.
"""

from __future__ import annotations

import linecache
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

REPOSITORY = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run|hub):(?P<text>.*?)-->\s*$")
RUN = ("python", "console")


def pages() -> list[Path]:
    return [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None = None  # the reason given, "" when the marker gives none
    hub: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPOSITORY)}:{self.line}"


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    dangling_markers: list[int] = field(default_factory=list)  # lines of markers above no fence


def parse(path: Path) -> Page:
    page = Page(path)
    lines = path.read_text().splitlines()
    markers: dict[str, str] = {}
    marker_lines: list[int] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            markers[marker["kind"]] = marker["text"].strip()
            marker_lines.append(index + 1)
        elif fence:
            indent, ticks = len(fence["indent"]), fence["fence"]
            end = index + 1
            while end < len(lines) and lines[end].strip() != ticks:
                end += 1
            body = [
                text[indent:] if not text[:indent].strip() else text.lstrip()
                for text in lines[index + 1 : end]
            ]
            page.blocks.append(
                Block(
                    path,
                    index + 1,
                    fence["lang"],
                    "\n".join(body) + "\n",
                    not_run=markers.get("not run"),
                    hub=tuple(markers.get("hub", "").split()),
                )
            )
            markers, marker_lines = {}, []
            index = end
        else:
            page.dangling_markers += marker_lines
            markers, marker_lines = {}, []
        index += 1
    page.dangling_markers += marker_lines
    return page


PAGES = [parse(path) for path in pages()]
BLOCKS = [block for page in PAGES for block in page.blocks if block.lang in RUN]


# ---------------------------------------------------------------------- console commands


@dataclass(frozen=True)
class Command:
    line: str
    env: dict[str, str]
    program: str
    args: list[str]
    expected: list[str]  # the output shown below it


def commands(block: Block) -> list[Command]:
    """The commands of a console block with the output each shows.

    With `$ ` prompts, prompted lines are commands and the lines below each its output;
    without, every line is a command. Trailing backslashes continue a line.
    """
    text = re.sub(r"\\\n\s*", " ", block.text)
    lines = [line for line in text.splitlines() if line.strip()]
    prompted = any(line.startswith("$ ") for line in lines)
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if not prompted or line.startswith("$ "):
            found.append((line.removeprefix("$ "), []))
        else:
            found[-1][1].append(line)
    result = []
    for line, expected in found:
        words = shlex.split(line, comments=True)
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        result.append(Command(line, env, words[0], words[1:], expected))
    return result


def pattern(shown: str) -> re.Pattern[str]:
    """A line of output as shown: `...` and `<placeholders>` stand for any text."""
    parts = re.split(r"(\.\.\.|<[^>]+>)", shown.rstrip())
    return re.compile("".join(".*" if i % 2 else re.escape(part) for i, part in enumerate(parts)))


def matches_in_order(shown: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(
        any(pattern(line).fullmatch(out.rstrip()) for out in remaining) for line in shown if line != "..."
    )


def run_zoo(command: Command) -> None:
    from zoo.cli import cli

    result = CliRunner().invoke(cli, command.args, env=command.env or None)
    report = f"$ {command.line}\nexit {result.exit_code}\n{result.stdout}{result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), report
    messages = [line for line in command.expected if line.startswith("zoo: ")]
    shown_output = [line for line in command.expected if not line.startswith("zoo: ")]
    if any(line.startswith("zoo: error: ") for line in messages):
        assert result.exit_code != 0, report
    else:
        assert result.exit_code == 0, report
    if messages:
        stderr = result.stderr.strip().splitlines()
        assert len(stderr) == len(messages), report
        assert all(pattern(shown).fullmatch(line) for shown, line in zip(messages, stderr, strict=True)), (
            report
        )
    assert matches_in_order(shown_output, result.stdout.splitlines()), report


# ---------------------------------------------------------------------- inputs and the Hub


def _image(path: Path, size: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(len(path.name)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


VOCABULARY = (
    "<pad>", "<bos>", "<eos>", "the", "a", "cat", "dog", "sat", "on", "mat", "ran", "big", "small", "red",
    "blue", "sees", "and", "is", "was", "in", "under", "it", ".", ",", "my", "your", "old", "new", "home",
    "park", "to", "<unk>",
)  # fmt: skip


def _features(path: Path, shape: tuple[int, int]) -> None:
    import numpy as np

    np.save(path, np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def _checkpoint(name: str, **overrides) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import torch
        from safetensors.torch import save_file

        import zoo

        torch.manual_seed(0)
        model = zoo.create(name, **overrides)
        save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))

    return make


def _finetuned(path: Path) -> None:
    """What examples/finetune.py writes: a 2-class resnet18_cbam, its classes in the metadata."""
    import json

    import torch
    from safetensors.torch import save_file

    import zoo

    torch.manual_seed(0)
    state = zoo.create("resnet18_cbam", num_classes=2).state_dict()
    metadata = {"model": "resnet18_cbam", "classes": json.dumps(["blue", "red"]), "model_args": "{}"}
    save_file({key: value.contiguous() for key, value in state.items()}, str(path), metadata=metadata)


# The input files the examples read, made in their working directory when a page names them.
INPUTS: dict[str, Callable[[Path], None]] = {
    "cat.jpg": lambda path: _image(path, (320, 240)),
    "dog.png": lambda path: _image(path, (200, 300)),
    "face.png": lambda path: _image(path, (48, 64)),
    "notes.txt": lambda path: path.write_text("not a picture\n"),
    "classes.txt": lambda path: path.write_text("".join(f"class {i}\n" for i in range(10))),
    "model.safetensors": _checkpoint("vit_tiny_patch16_224"),  # README: checkpoint=
    "best.safetensors": _checkpoint("resnet18_cbam", num_classes=10),  # docs/hub.md: zoo export
    "finetuned.safetensors": _finetuned,  # docs/training.md: the recipe's output
    # docs/sequence.md: zoo attn on sequence models, small ones saved as they were built
    "text.safetensors": _checkpoint(
        "text_transformer_small", vocab_size=32, embed_dim=32, depth=2, num_heads=2
    ),
    "vocab.txt": lambda path: path.write_text("".join(f"{token}\n" for token in VOCABULARY)),
    "s2s.safetensors": _checkpoint(
        "seq2seq_lstm_attn", src_vocab_size=13, tgt_vocab_size=13, embed_dim=16, hidden_size=16
    ),
    "speech.safetensors": _checkpoint("speech_lstm_attn", in_features=16, hidden_size=16, num_classes=4),
    "utterance.npy": lambda path: _features(path, (50, 16)),
}


@pytest.fixture(scope="session")
def made_inputs(tmp_path_factory) -> Callable[[str], Path]:
    """Each input file, made once for the whole run."""
    folder = tmp_path_factory.mktemp("docs-inputs")

    def made(name: str) -> Path:
        path = folder / name
        if not path.exists():
            INPUTS[name](path)
        return path

    return made


@pytest.fixture
def workdir(tmp_path, made_inputs, monkeypatch) -> Callable[[str], Path]:
    """`workdir(text)`: the current directory, holding every input file `text` names."""

    def enter(text: str) -> Path:
        for name in INPUTS:
            if re.search(rf"(?<![\w./-]){re.escape(name)}", text):
                (tmp_path / name).symlink_to(made_inputs(name))
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return enter


@pytest.fixture(scope="session")
def published(hub_server, tmp_path_factory) -> Callable[[str], None]:
    """`publish(name_or_tag)`: the test Hub serves random weights for it, where the
    registry says its checkpoint lives (once per run)."""
    folder = tmp_path_factory.mktemp("docs-weights")
    done: set[str] = set()

    def publish(name: str) -> None:
        import zoo

        if name.startswith("hf-hub:"):
            if name not in done:
                _publish_timm_repository(hub_server, name.removeprefix("hf-hub:"), folder)
                done.add(name)
            return
        info = zoo.model_info(name)
        [weight] = [w for w in info.weights if w.tag == (info.tag or info.default_tag)]
        if weight.name in done:
            return
        path = folder / f"{weight.name}.safetensors"
        _checkpoint(weight.name)(path)
        hub_server.publish(weight.hf_hub_id, {weight.filename: path})
        done.add(weight.name)

    return publish


HUB_CONFIGS = REPOSITORY / "tests" / "data" / "hub_configs"


def _publish_timm_repository(hub_server, repo_id: str, folder: Path) -> None:
    """A repository in timm's format: its config.json, then random weights of what it builds."""
    import torch
    from safetensors.torch import save_file

    import zoo

    hub_server.publish(repo_id, {"config.json": HUB_CONFIGS / f"{repo_id.replace('/', '__')}.config.json"})
    torch.manual_seed(0)
    model = zoo.create(f"hf-hub:{repo_id}")
    path = folder / f"{repo_id.replace('/', '__')}.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    hub_server.publish(repo_id, {"model.safetensors": path})


# ---------------------------------------------------------------------- the tests


def ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


RUNNABLE_PAGES = [
    page for page in PAGES if any(b.lang == "python" and b.not_run is None for b in page.blocks)
]
ALL_CONSOLE = [block for block in BLOCKS if block.lang == "console"]
CONSOLE = [block for block in ALL_CONSOLE if block.not_run is None]
NOT_RUN = [block for block in BLOCKS if block.not_run is not None]


def test_readme_and_every_docs_page_are_read():
    assert {page.path.name for page in RUNNABLE_PAGES} >= {"README.md", "using.md", "hub.md", "sequence.md"}
    assert len(CONSOLE) >= 8


@pytest.mark.parametrize("page", PAGES, ids=[str(p.path.relative_to(REPOSITORY)) for p in PAGES])
def test_markers_sit_right_above_a_runnable_fence(page: Page):
    assert page.dangling_markers == [], f"{page.path}: markers above no fence, lines {page.dangling_markers}"
    for block in page.blocks:
        if block.not_run is not None or block.hub:
            assert block.lang in RUN, (
                f"{block.where}: a marker on a {block.lang or 'plain'} block, which never runs"
            )


@pytest.mark.parametrize("block", NOT_RUN, ids=ids(NOT_RUN))
def test_a_block_not_run_says_why(block: Block):
    assert block.not_run, f"{block.where}: `<!-- not run: -->` without a reason"
    pytest.skip(f"{block.where}: not run: {block.not_run}")


@pytest.mark.parametrize("block", ALL_CONSOLE, ids=ids(ALL_CONSOLE))
def test_console_blocks_run_only_zoo_unless_marked(block: Block):
    others = [c.line for c in commands(block) if c.program != "zoo"]
    assert block.not_run is not None or not others, f"{block.where}: not a zoo command: {others}"


@pytest.mark.parametrize(
    "page", RUNNABLE_PAGES, ids=[str(p.path.relative_to(REPOSITORY)) for p in RUNNABLE_PAGES]
)
def test_a_page_s_python_examples_run_in_order_in_one_namespace(page: Page, hub, published, workdir):
    blocks = [b for b in page.blocks if b.lang == "python" and b.not_run is None]
    workdir("".join(block.text for block in blocks))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks:
        for name in block.hub:
            published(name)
        filename = f"<{block.where}>"
        linecache.cache[filename] = (len(block.text), None, block.text.splitlines(True), filename)
        exec(compile(block.text, filename, "exec"), namespace)


@pytest.mark.parametrize("block", CONSOLE, ids=ids(CONSOLE))
def test_each_console_command_ends_as_the_page_shows(block: Block, hub, published, workdir):
    for name in block.hub:
        published(name)
    workdir(block.text)
    for command in commands(block):
        assert command.program == "zoo", f"{block.where}: not a zoo command: {command.line}"
        run_zoo(command)
