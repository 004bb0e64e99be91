"""How the zoo talks to the Hub over the network: settings, and what a failure means.

Every setting is read from the environment when a file is fetched:

- `HF_ENDPOINT`: checked to be an http(s) URL with a host before any request;
- `HF_HUB_ETAG_TIMEOUT` (default 10 s): the timeout of a request for a file's metadata;
- `HF_HUB_DOWNLOAD_TIMEOUT` (default 10 s): the timeout of reading a file (read by
  `huggingface_hub` when it is imported); it is named when a download times out;
- `ZOO_HUB_RETRY_SECONDS` (default 10 s): how long transient failures are retried;
- `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (either case): honoured by the HTTP
  client, and named (never their values) in the advice when the Hub cannot be reached.

A failure is transient when waiting may cure it (a timeout, a dropped connection, HTTP 408,
429 and 5xx): the request is retried with exponential backoff, honouring `Retry-After`,
until `ZOO_HUB_RETRY_SECONDS` have passed since the first failure. Anything else (no such
host, connection refused, a TLS failure, a proxy error, HTTP 401/403/404) fails at once.

Nothing here sends a request: `zoo.weights.hub` does, and passes its outcome here.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..errors import HubError

__all__ = [
    "TRANSIENT_STATUSES",
    "Failure",
    "Settings",
    "advice",
    "endpoint_problem",
    "failure_of_error",
    "failure_of_status",
    "is_transport_error",
    "retry",
    "shown_endpoint",
]

logger = logging.getLogger("zoo")

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_RETRY_SECONDS = 10.0
DEFAULT_TIMEOUT = 10.0
_FIRST_WAIT = 0.5
_LONGEST_WAIT = 8.0
_PROXY_VARIABLES = {
    "http": ("HTTP_PROXY", "ALL_PROXY"),
    "https": ("HTTPS_PROXY", "ALL_PROXY"),
}


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """The network settings of one fetch, read from the environment."""

    endpoint: str | None
    """`HF_ENDPOINT` without a trailing slash, checked; None for the Hugging Face Hub."""
    etag_timeout: float
    retry_seconds: float
    download_timeout: float

    @classmethod
    def read(cls, endpoint: str | None) -> Settings:
        """The current settings; one-line `HubError` for a malformed value."""
        if endpoint is not None:
            given = os.environ.get("HF_ENDPOINT") or endpoint
            problem = endpoint_problem(given)
            if problem is not None:
                raise HubError(f"HF_ENDPOINT={given!r} {problem}")
        return cls(
            endpoint,
            seconds_from("HF_HUB_ETAG_TIMEOUT", DEFAULT_TIMEOUT, whole=True),
            seconds_from("ZOO_HUB_RETRY_SECONDS", DEFAULT_RETRY_SECONDS),
            seconds_from("HF_HUB_DOWNLOAD_TIMEOUT", DEFAULT_TIMEOUT, whole=True),
        )

    @property
    def where(self) -> str:
        return shown_endpoint(self.endpoint) if self.endpoint else "the Hugging Face Hub"


def endpoint_problem(endpoint: str) -> str | None:
    """What is wrong with an `HF_ENDPOINT` value, or None if it is an http(s) URL with a host."""
    if any(c.isspace() for c in endpoint):
        return "holds whitespace; it should read like https://huggingface.co"
    if "://" not in endpoint:
        return "is not a URL: it should start with https:// or http://, like https://huggingface.co"
    parts = urlsplit(endpoint)
    if parts.scheme.lower() not in ("http", "https"):
        return f"has the scheme '{parts.scheme}'; the Hub is reached over https:// or http://"
    if not parts.hostname:
        return "names no host; it should read like https://huggingface.co"
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    return None


def seconds_from(variable: str, default: float, *, whole: bool = False) -> float:
    """A number of seconds from the environment, `default` when unset or empty.

    `whole`: a positive whole number, as `huggingface_hub` reads its timeouts (it fails on
    import with anything else, so they are checked before it is imported)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(int(text)) if whole else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf") or (whole and value == 0):
        kind = "a whole number (1 or more)" if whole else "a number (0 or more)"
        raise HubError(f"{variable}={text!r} is not {kind} of seconds")
    return value


def shown_endpoint(endpoint: str) -> str:
    """An endpoint as messages show it: without any user name or password it carries."""
    parts = urlsplit(endpoint)
    if "@" not in parts.netloc:
        return endpoint
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def proxy_variables(url: str) -> list[str]:
    """The proxy variables set that apply to `url`, as spelled in the environment."""
    scheme = urlsplit(url).scheme.lower()
    found = [_set_variable(name) for name in _PROXY_VARIABLES.get(scheme, ())]
    found = [name for name in found if name]
    no_proxy = _set_variable("NO_PROXY")
    return [*found, no_proxy] if found and no_proxy else found


def _set_variable(name: str) -> str | None:
    for spelling in (name, name.lower()):
        if os.environ.get(spelling, "").strip():
            return spelling
    return None


# ---------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Failure:
    """Why a request to the Hub failed, in words, and whether waiting may cure it."""

    reason: str
    """A clause: `http://host refused the connection`, `http://host answered HTTP 503 ...`."""
    transient: bool
    kind: str
    """`connect`, `tls`, `proxy`, `timeout`, `dropped`, `status` or `request`."""
    retry_after: float | None = None
    """The wait the server asked for (`Retry-After`), in seconds."""
    retried: str = ""
    """How it was retried, as `retry` words it; empty when it was not."""

    def describe(self) -> str:
        """The reason with how it was retried."""
        return self.reason + (self.retried or " (not retried)")


def failure_of_status(status: int, reason: str, where: str, retry_after: str | None) -> Failure | None:
    """A transient HTTP status as a failure; None for any other (the caller handles those)."""
    if status not in TRANSIENT_STATUSES:
        return None
    phrase = f"HTTP {status}" + (f" ({reason})" if reason else "")
    return Failure(f"{where} answered {phrase}", True, "status", retry_after=_seconds_or_none(retry_after))


def is_transport_error(error: BaseException) -> bool:
    """An error of the HTTP client `huggingface_hub` uses (httpx2 today, httpx before)."""
    return "TransportError" in _kinds(error) or "InvalidURL" in _kinds(error)


def failure_of_error(error: BaseException, where: str, timeout_variable: str, timeout: float) -> Failure:
    """What a transport error means. The client's classes are matched by name, since
    `huggingface_hub` has used more than one client with the same class hierarchy."""
    kinds = _kinds(error)
    text = _first_line(error)
    if "ProxyError" in kinds:
        return Failure(f"the proxy failed: {text}", False, "proxy")
    if "TimeoutException" in kinds:
        what = "accept a connection" if "ConnectTimeout" in kinds else "answer"
        return Failure(f"{where} did not {what} within {timeout:g} s ({timeout_variable})", True, "timeout")
    if "ConnectError" in kinds:
        return _connect_failure(error, where, text)
    if "NetworkError" in kinds or "RemoteProtocolError" in kinds:
        return Failure(f"the connection to {where} dropped: {text}", True, "dropped")
    return Failure(f"the request to {where} failed: {text}", False, "request")


def _connect_failure(error: BaseException, where: str, text: str) -> Failure:
    causes = list(_chain(error))
    if any(isinstance(c, ssl.SSLError) for c in causes) or "SSL" in text or "certificate" in text.lower():
        return Failure(f"TLS with {where} failed: {text}", False, "tls")
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
        return Failure(f"{where} refused the connection", False, "connect")
    if any(isinstance(c, socket.gaierror) for c in causes) or _names_unknown_host(text):
        host = urlsplit(where).hostname or where
        return Failure(f"no such host: {host} (the name does not resolve)", False, "connect")
    return Failure(f"{where} cannot be reached: {text}", False, "connect")


def _names_unknown_host(text: str) -> bool:
    text = text.lower()
    return any(
        words in text
        for words in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution")
    )


def advice(failure: Failure | None, url: str) -> str:
    """What to check, for a failure to reach `url`: the settings that matter, by name."""
    checks = "check " + _joined(["the network", "HF_ENDPOINT", *proxy_variables(url)])
    if failure is not None and failure.kind == "status":
        return "the Hub may be busy or down: try again later, or retry longer with ZOO_HUB_RETRY_SECONDS"
    if failure is not None and failure.kind == "timeout":
        return f"{checks}; on a slow link raise HF_HUB_ETAG_TIMEOUT or ZOO_HUB_RETRY_SECONDS"
    if failure is not None and failure.kind == "tls":
        return "check that HF_ENDPOINT's scheme (https:// or http://) is the server's, and the certificates"
    return f"{checks}; with HF_HUB_OFFLINE=1 only files in the cache are used"


def _joined(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


# ---------------------------------------------------------------------- retrying


def retry(attempt: Callable[[], Failure | None], seconds: float) -> Failure | None:
    """Call `attempt` until it succeeds (None) or fails for good; transient failures are
    retried with exponential backoff (or the `Retry-After` the server asks for) for at most
    `seconds` after the first. Returns None, or the last failure, saying how it was retried:
    how many attempts, over how long from the start of the first to the end of the last."""
    started = time.monotonic()
    failure = attempt()
    if failure is None or not failure.transient:
        return failure
    if seconds <= 0:
        return replace(failure, retried=" (not retried: ZOO_HUB_RETRY_SECONDS is 0)")
    logger.info("%s; retrying for up to %g s (ZOO_HUB_RETRY_SECONDS)", failure.reason, seconds)
    first_failed = time.monotonic()
    attempts = 1
    for wait in _backoff():
        left = seconds - (time.monotonic() - first_failed)
        if failure.retry_after is not None and failure.retry_after > left:
            asked = f", asking to wait {failure.retry_after:g} s: longer than ZOO_HUB_RETRY_SECONDS allows"
            return replace(failure, retried=asked + _after(attempts, time.monotonic() - started))
        if left <= 0:
            break
        time.sleep(failure.retry_after if failure.retry_after is not None else min(wait, left))
        attempts += 1
        failure = attempt()
        if failure is None or not failure.transient:
            return failure
    took = time.monotonic() - started
    return replace(
        failure, retried=f", still after {attempts} attempts over {took:.1f} s (ZOO_HUB_RETRY_SECONDS)"
    )


def _after(attempts: int, took: float) -> str:
    return " (not retried)" if attempts == 1 else f" (after {attempts} attempts over {took:.1f} s)"


def _backoff() -> Iterator[float]:
    wait = _FIRST_WAIT
    while True:
        yield wait
        wait = min(wait * 2, _LONGEST_WAIT)


# ---------------------------------------------------------------------- helpers


def _seconds_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
    return value if value is not None and 0 <= value < float("inf") else None


def _kinds(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
