"""A real Hub-protocol server on loopback for tests: `olah`, serving git repositories.

`HubServer` runs `olah-cli` in offline mode over a folder of git mirrors
(`<mirrors>/models/<org>/<repo>`, branch `main`, plain git blobs) that tests fill with
`publish`. Point `huggingface_hub` at `server.endpoint` through `HF_ENDPOINT`. Repositories
published while the server runs are served at once.

    server = HubServer(tmp_path)
    server.start()
    commit = server.publish("test/tiny-vit", {"model.safetensors": path_or_bytes})
    ...
    server.stop()

The `hub` fixture in `tests/conftest.py` gives each test the session's server with
`HF_ENDPOINT` set and `HF_HOME` in the test's own temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["HubServer", "free_port"]

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "zoo tests",
    "GIT_AUTHOR_EMAIL": "tests@zoo.invalid",
    "GIT_COMMITTER_NAME": "zoo tests",
    "GIT_COMMITTER_EMAIL": "tests@zoo.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _olah_cli() -> str:
    beside_python = Path(sys.executable).parent / "olah-cli"
    found = str(beside_python) if beside_python.exists() else shutil.which("olah-cli")
    if found is None:
        raise RuntimeError("olah-cli not found: install the test extra (pip install -e '.[test]')")
    return found


class HubServer:
    """An `olah` process serving the git repositories under `root/mirrors`."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.mirrors = self.root / "mirrors"
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.root / "olah.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        (self.mirrors / "models").mkdir(parents=True, exist_ok=True)
        (self.root / "olah-repos").mkdir(exist_ok=True)
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.root / "olah-repos"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "\n[accessibility]\n"
            "offline = true\n"
        )
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [_olah_cli(), "-c", str(config)],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"olah exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"olah did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def __enter__(self) -> HubServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, repo_id: str, files: dict[str, bytes | str | Path]) -> str:
        """Commit files (contents, or paths to copy) to `repo_id` on `main`; returns the commit."""
        repo = self.mirrors / "models" / repo_id
        if not (repo / ".git").exists():
            repo.mkdir(parents=True, exist_ok=True)
            self._git(repo, "init", "-q", "-b", "main")
        for name, content in files.items():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content.encode() if isinstance(content, str) else content)
        self._git(repo, "add", "-A")
        self._git(repo, "commit", "-q", "--allow-empty", "-m", f"publish {', '.join(files)}")
        return self._git(repo, "rev-parse", "HEAD").strip()

    @staticmethod
    def _git(repo: Path, *args: str) -> str:
        env = {**os.environ, **_GIT_ENV, "HOME": str(repo)}
        done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
        return done.stdout
