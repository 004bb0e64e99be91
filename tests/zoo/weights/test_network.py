"""The Hub as users reach it: unreachable, refusing, busy, slow, misconfigured, behind a proxy.

Everything runs on loopback: the olah server of `hub`, closed ports, and `ScriptedHub`, a
small standard-library HTTP server that answers with the statuses a test scripts (and then,
if asked, passes requests on to olah). No test resolves a host name.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli
from zoo.weights import network

from ...hub_server import HubServer, free_port
from .test_hub import registry_with, repo_id, save, tiny_model

TOKEN = "hf_TESTTOKEN123secret"
MISSING = "zoo: error: tiny_vit.test: {repo}/model.safetensors is not in the cache and "


class ScriptedHub:
    """An HTTP server on 127.0.0.1 answering each request with the next scripted status
    (the last one repeats), or, once `forward_to` is set and the script is spent, passing
    the request on to that server. It records when each request came and what it carried."""

    def __init__(self, statuses: list[int], *, forward_to: str | None = None, delay: float = 0.0):
        self.statuses = list(statuses)
        self.forward_to = forward_to
        self.delay = delay
        self.headers: dict[str, str] = {}
        self.requests: list[tuple[float, str, Message]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gaps(self) -> list[float]:
        times = [when for when, _, _ in self.requests]
        return [b - a for a, b in itertools.pairwise(times)]

    def __enter__(self) -> ScriptedHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        self.requests.append((time.monotonic(), handler.command, handler.headers))
        index = len(self.requests) - 1
        if self.forward_to and index >= len(self.statuses):
            return self._forward(handler)
        time.sleep(self.delay)
        status = self.statuses[min(index, len(self.statuses) - 1)]
        body = b'{"error": "scripted"}'
        handler.send_response(status)
        for key, value in self.headers.items():
            handler.send_header(
                key, value.replace("{authorization}", handler.headers.get("authorization", ""))
            )
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _forward(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        host, port = self.forward_to.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        connection.request(handler.command, handler.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", response.getheader("Content-Length") or str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)
        connection.close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                scripted._answer(self)

            def do_GET(self) -> None:
                scripted._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


class SilentHub:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers; it keeps
    the connections open until it stops, which it does on leaving its block or after
    `lifetime` seconds, whichever comes first."""

    def __init__(self, lifetime: float = 60.0) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.connections: list[socket.socket] = []
        self.deadline = time.monotonic() + lifetime
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)

    def __enter__(self) -> SilentHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        for connection in [*self.connections, self.listener]:
            connection.close()


@pytest.fixture
def served(hub: HubServer, request, tmp_path, make_registry, use_registry):
    """A tiny ViT at the test hub, its registry the CLI's; returns (checkpoint, repo)."""
    path = save(tiny_model("vit", seed=1), tmp_path / "vit.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    use_registry(registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}}))
    return path, repo


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "cat.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(path)
    return path


def zoo_cli(*args: str):
    """Run a command; returns (result, seconds)."""
    start = time.monotonic()
    result = CliRunner().invoke(cli, list(args))
    return result, time.monotonic() - start


def error_line(result) -> str:
    """The command failed with one line on stderr, after any info lines."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("zoo: info: ") for line in lines[:-1]), result.stderr
    assert lines[-1].startswith("zoo: error: ")
    return lines[-1]


def commands(image: Path) -> dict[str, list[str]]:
    return {
        "get": ["get", "tiny_vit"],
        "create": ["create", "tiny_vit", "--pretrained"],
        "predict": ["predict", "tiny_vit", str(image)],
    }


# ---------------------------------------------------------------------- unreachable


@pytest.mark.parametrize("command", ["get", "create", "predict"])
def test_a_closed_port_fails_at_once_saying_so_and_what_to_check(command, served, image, monkeypatch):
    _, repo = served
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", endpoint)

    result, seconds = zoo_cli(*commands(image)[command])

    assert seconds < 3  # huggingface_hub alone retries for 24 s
    assert result.stderr.splitlines() == [
        MISSING.format(repo=repo) + f"{endpoint} refused the connection (not retried); "
        "check the network and HF_ENDPOINT; with HF_HUB_OFFLINE=1 only files in the cache are used"
    ]


def test_the_advice_names_the_proxy_variables_that_apply(served, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://user:proxy-password@127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # not for an http:// endpoint

    line = error_line(zoo_cli("get", "tiny_vit")[0])

    assert "check the network, HF_ENDPOINT, HTTP_PROXY and no_proxy;" in line
    assert "HTTPS_PROXY" not in line and "proxy-password" not in line


def zoo_process(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`zoo` in a fresh process: the HTTP client reads the proxy variables when it starts."""
    environment = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    code = "import sys; from zoo.cli import main; sys.argv[0] = 'zoo'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_proxy_variables_are_honoured(hub):
    closed_proxy = f"http://127.0.0.1:{free_port()}"

    through_proxy = zoo_process("get", "hf-hub:test/no-such-repo", HTTP_PROXY=closed_proxy)
    bypassed = zoo_process("get", "hf-hub:test/no-such-repo", HTTP_PROXY=closed_proxy, NO_PROXY="127.0.0.1")

    assert through_proxy.returncode == 1
    assert through_proxy.stderr.strip().endswith(
        "refused the connection (not retried); check the network, HF_ENDPOINT and HTTP_PROXY; "
        "with HF_HUB_OFFLINE=1 only files in the cache are used"
    )
    assert bypassed.returncode == 1  # it reached the hub, which has no such repository
    assert "repository test/no-such-repo not found" in bypassed.stderr


def test_tls_to_a_server_that_speaks_plain_http_fails_at_once(served, monkeypatch):
    with ScriptedHub([200]) as server:
        endpoint = server.endpoint.replace("http://", "https://")
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")
    line = error_line(result)
    assert seconds < 3
    assert f"TLS with {endpoint} failed:" in line and "(not retried)" in line
    assert "check that HF_ENDPOINT's scheme (https:// or http://) is the server's" in line


# ---------------------------------------------------------------------- transient failures


def test_429_then_503_are_retried_with_backoff_within_the_bound(served, monkeypatch):
    _, repo = served
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "1.2")
    with ScriptedHub([429, 503]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")

    info, error = result.stderr.splitlines()
    assert info == (
        f"zoo: info: {server.endpoint} answered HTTP 429 (Too Many Requests); "
        "retrying for up to 1.2 s (ZOO_HUB_RETRY_SECONDS)"
    )
    attempts = len(server.requests)
    assert error.startswith(
        MISSING.format(repo=repo) + f"{server.endpoint} answered HTTP 503 (Service Unavailable), "
        f"still after {attempts} attempts over 1."
    )
    assert error.endswith(
        " s (ZOO_HUB_RETRY_SECONDS); "
        "the Hub may be busy or down: try again later, or retry longer with ZOO_HUB_RETRY_SECONDS"
    )
    gaps = server.gaps()
    assert attempts == 3 and gaps[0] == pytest.approx(0.5, abs=0.15)  # 0.5 s, then the rest
    assert sum(gaps) == pytest.approx(1.2, abs=0.2)
    assert seconds < 2.5


def test_a_transient_failure_that_clears_downloads_the_file(served, hub, monkeypatch):
    path, _ = served
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "5")
    with ScriptedHub([503, 502], forward_to=hub.endpoint) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, _ = zoo_cli("get", "tiny_vit")
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.split()[1]).read_bytes() == path.read_bytes()
    assert [method for _, method, _ in server.requests[:3]] == ["HEAD", "HEAD", "HEAD"]
    assert server.gaps()[:2] == [pytest.approx(0.5, abs=0.15), pytest.approx(1.0, abs=0.15)]


def test_retry_after_is_honoured_and_one_beyond_the_bound_is_not_waited_for(served, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "1")
    with ScriptedHub([429]) as server:
        server.headers = {"Retry-After": "0.3"}
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        zoo_cli("get", "tiny_vit")
    assert server.gaps() == [pytest.approx(0.3, abs=0.1)] * 3

    with ScriptedHub([429]) as server:
        server.headers = {"Retry-After": "60"}
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")
    assert len(server.requests) == 1 and seconds < 1.5
    assert (
        "answered HTTP 429 (Too Many Requests), asking to wait 60 s: longer than ZOO_HUB_RETRY_SECONDS allows "
        "(not retried)" in error_line(result)
    )


def test_zero_retry_seconds_means_one_attempt(served, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "0")
    with ScriptedHub([503]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        line = error_line(zoo_cli("get", "tiny_vit")[0])
    assert len(server.requests) == 1
    assert "answered HTTP 503 (Service Unavailable) (not retried: ZOO_HUB_RETRY_SECONDS is 0)" in line


def test_a_slow_hub_times_out_after_hf_hub_etag_timeout_and_is_retried(served, monkeypatch):
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "0.5")
    with ScriptedHub([200], delay=3) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")
    line = error_line(result)
    assert (
        f"{server.endpoint} did not answer within 1 s (HF_HUB_ETAG_TIMEOUT), still after 2 attempts" in line
    )
    assert "on a slow link raise HF_HUB_ETAG_TIMEOUT or ZOO_HUB_RETRY_SECONDS" in line
    assert 2.4 < seconds < 4


def test_a_hub_that_never_answers_fails_after_its_attempts_stating_their_true_duration(served, monkeypatch):
    _, repo = served
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "1")
    with SilentHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")
        connections = len(server.connections)

    assert result.exit_code == 1
    line = error_line(result)
    stated = re.search(
        r"did not answer within 1 s \(HF_HUB_ETAG_TIMEOUT\), still after (\d+) attempts over ([\d.]+) s", line
    )
    assert line.startswith(MISSING.format(repo=repo)) and stated, line
    attempts, took = int(stated[1]), float(stated[2])
    assert attempts == connections >= 2
    # Each attempt waited its whole timeout, and all of them lay within the command's run.
    assert attempts * 1.0 <= took + 0.05 and took <= seconds + 0.05


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ZOO_HUB_RETRY_SECONDS",
            "soon",
            "ZOO_HUB_RETRY_SECONDS='soon' is not a number (0 or more) of seconds",
        ),
        ("ZOO_HUB_RETRY_SECONDS", "-1", "ZOO_HUB_RETRY_SECONDS='-1' is not a number (0 or more) of seconds"),
        (
            "HF_HUB_ETAG_TIMEOUT",
            "0.5",
            "HF_HUB_ETAG_TIMEOUT='0.5' is not a whole number (1 or more) of seconds",
        ),
        (
            "HF_HUB_DOWNLOAD_TIMEOUT",
            "0",
            "HF_HUB_DOWNLOAD_TIMEOUT='0' is not a whole number (1 or more) of seconds",
        ),
    ],
    ids=["retry-word", "retry-negative", "etag-fraction", "download-zero"],
)
def test_a_malformed_timeout_or_retry_setting_is_one_line(variable, value, message, served, monkeypatch):
    monkeypatch.setenv(variable, value)
    assert error_line(zoo_cli("get", "tiny_vit")[0]) == f"zoo: error: {message}"


# ---------------------------------------------------------------------- no needless requests


def test_a_cached_file_loads_with_the_hub_down_without_an_extra_request(served, image, monkeypatch):
    assert zoo_cli("get", "tiny_vit")[0].exit_code == 0
    with ScriptedHub([503]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        for args in commands(image).values():
            result, seconds = zoo_cli(*args)
            assert result.exit_code == 0 and seconds < 3, result.output
        assert len(server.requests) == 3  # huggingface_hub's own check, once a command
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert zoo_cli("get", "tiny_vit")[0].exit_code == 0
        assert len(server.requests) == 3


def test_force_with_the_hub_down_fails_at_once_keeping_the_cached_file(served, monkeypatch):
    _, repo = served
    assert zoo_cli("get", "tiny_vit")[0].exit_code == 0
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    line = error_line(zoo_cli("get", "tiny_vit", "--force")[0])
    assert line.startswith(
        f"zoo: error: tiny_vit.test: cannot download {repo}/model.safetensors again: "
        f"{endpoint} refused the connection (not retried)"
    )
    assert zoo_cli("get", "tiny_vit")[0].exit_code == 0


# ---------------------------------------------------------------------- HF_ENDPOINT


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not-a-url", "is not a URL: it should start with https:// or http://, like https://huggingface.co"),
        ("ftp://x", "has the scheme 'ftp'; the Hub is reached over https:// or http://"),
        ("http://", "names no host; it should read like https://huggingface.co"),
        ("http://127.0.0.1:99999", "has a port that is not a number from 0 to 65535"),
        ("https://hub .example", "holds whitespace; it should read like https://huggingface.co"),
    ],
    ids=["no-scheme", "ftp", "no-host", "port", "whitespace"],
)
def test_a_malformed_hf_endpoint_is_one_line_naming_it(value, problem, served, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", value)
    for args in (["get", "tiny_vit"], ["get", "hf-hub:test/any"], ["create", "tiny_vit", "--pretrained"]):
        result, seconds = zoo_cli(*args)
        assert result.stderr.splitlines() == [f"zoo: error: HF_ENDPOINT={value!r} {problem}"]
        assert seconds < 3


def test_offline_mode_does_not_look_at_hf_endpoint(served, monkeypatch):
    assert zoo_cli("get", "tiny_vit")[0].exit_code == 0
    monkeypatch.setenv("HF_ENDPOINT", "not-a-url")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert zoo_cli("create", "tiny_vit", "--pretrained")[0].exit_code == 0


# ---------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    ("status", "with_token", "message"),
    [
        (
            401,
            True,
            "{endpoint} refused the token in HF_TOKEN for {repo} (HTTP 401): not valid, or expired",
        ),
        (401, False, "{endpoint} asks for a token for {repo} (HTTP 401): set HF_TOKEN"),
        (
            403,
            True,
            "the token in HF_TOKEN does not give access to {repo} on {endpoint} (HTTP 403): "
            "it lacks the permission, or the repository's terms are not accepted",
        ),
        (403, False, "{endpoint} denies access to {repo} (HTTP 403): set HF_TOKEN to a token with access"),
    ],
    ids=["401-token", "401-none", "403-token", "403-none"],
)
def test_a_refused_token_is_one_line_naming_hf_token(status, with_token, message, served, monkeypatch):
    _, repo = served
    if with_token:
        monkeypatch.setenv("HF_TOKEN", TOKEN)
    with ScriptedHub([status]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        result, seconds = zoo_cli("get", "tiny_vit")
    expected = message.format(endpoint=server.endpoint, repo=repo)
    assert result.stderr.splitlines() == [f"zoo: error: tiny_vit.test: {expected}"]
    assert seconds < 3 and TOKEN not in result.output
    sent = server.requests[0][2].get("Authorization")
    assert sent == (f"Bearer {TOKEN}" if with_token else None)


def test_the_token_never_appears_in_output_or_logs(served, hub, image, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("ZOO_HUB_RETRY_SECONDS", "0.5")
    caplog.set_level(logging.DEBUG)
    outputs = []

    def run(*args: str) -> None:
        result, _ = zoo_cli(*args)
        outputs.append(result.output + result.stderr)

    exported = tmp_path / "export"
    save(tiny_model("vit", seed=4), tmp_path / "trained.safetensors")
    run(
        "export",
        "vit_tiny_patch16_224",
        "--checkpoint",
        str(tmp_path / "trained.safetensors"),
        "-o",
        str(exported),
        "--num-classes",
        "10",
        "--license",
        "mit",
        "-p",
        "input_size=[3, 32, 32]",
        *[
            arg
            for key, value in {
                "img_size": 32,
                "patch_size": 8,
                "embed_dim": 48,
                "depth": 2,
                "num_heads": 3,
            }.items()
            for arg in ("-a", f"{key}={value}")
        ],
    )
    hub.publish("test/token-export", {p.name: p for p in exported.iterdir()})
    for args in commands(image).values():
        run(*args)
    run("get", "hf-hub:test/token-export")
    run("predict", "hf-hub:test/token-export", str(image))
    run("get", "hf-hub:test/no-such-repo")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    run("get", "tiny_vit", "--force")
    run("get", "hf-hub:test/other")
    for statuses in ([401], [403], [429, 503], [400]):
        with ScriptedHub(statuses) as server:
            server.headers = {"X-Error-Message": "bad token {authorization}"}  # a server echoing it
            monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
            run("get", "tiny_vit", "--force")
            run("create", "tiny_vit", "--pretrained", "--num-classes", "3")
            run("get", "hf-hub:test/token-export")
    assert len(outputs) == 21 and all(outputs)
    assert "failed: HTTP 400 (Bad Request): bad token Bearer ***" in outputs[-3]
    logged = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("zoo", "huggingface_hub")]
    assert logged
    for output in [*outputs, *logged]:
        assert TOKEN not in output


# ---------------------------------------------------------------------- what failures mean


def test_failures_are_classified_by_what_waiting_may_cure():
    import httpx2

    where = "https://hub.example"
    refused = network.failure_of_error(httpx2.ConnectError("[Errno 111] Connection refused"), where, "T", 10)
    unknown = network.failure_of_error(
        httpx2.ConnectError("[Errno -2] Name or service not known"), where, "T", 10
    )
    tls = network.failure_of_error(
        httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] ..."), where, "T", 10
    )
    slow = network.failure_of_error(httpx2.ReadTimeout("timed out"), where, "HF_HUB_ETAG_TIMEOUT", 10)
    dropped = network.failure_of_error(httpx2.RemoteProtocolError("Server disconnected"), where, "T", 10)
    proxy = network.failure_of_error(httpx2.ProxyError("407 Proxy Authentication Required"), where, "T", 10)

    assert [f.transient for f in (refused, unknown, tls, proxy)] == [False] * 4
    assert [f.transient for f in (slow, dropped)] == [True, True]
    assert unknown.reason == "no such host: hub.example (the name does not resolve)"
    assert tls.kind == "tls" and slow.reason == f"{where} did not answer within 10 s (HF_HUB_ETAG_TIMEOUT)"
    assert [network.failure_of_status(s, "", where, None) is None for s in (401, 403, 404, 200, 302)] == [
        True
    ] * 5
    assert all(
        network.failure_of_status(s, "", where, None).transient for s in (408, 429, 500, 502, 503, 504)
    )
