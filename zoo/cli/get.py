"""`zoo get`: weights downloaded into the Hugging Face cache and checked."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import ZooError
from . import in_flags_of
from .output import echo_error, echo_json, json_option

__all__ = ["get_command"]


@click.command("get")
@click.argument("names", nargs=-1, required=True, metavar="NAME[.TAG]...")
@click.option("--revision", help="A branch, tag or commit of the Hub repository instead of the registry's.")
@click.option("--force", is_flag=True, help="Download again even if cached, and re-check the sha256.")
@json_option
def get_command(names: tuple[str, ...], revision: str | None, force: bool, as_json: bool) -> None:
    """Download weights into the Hugging Face cache, check them, print sha256 and path.

    Without a tag, the name's default tag. The output reads like sha256sum's, so
    `sha256sum -c` checks it again. Files are shared with timm and transformers; HF_ENDPOINT,
    HF_HOME, HF_HUB_OFFLINE, HF_TOKEN, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT and the
    proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are honoured.

    A Hub that cannot be reached (no such host, connection refused, TLS) or refuses (401,
    403, 404) fails at once; timeouts, 429 and 5xx are retried with backoff for at most
    ZOO_HUB_RETRY_SECONDS (default 10, 0 for no retry).

    \b
    Examples:
      zoo get vit_large_patch16_224
      zoo get resnet50.a1_in1k vit_base_patch16_224_in21k.orig_in21k --json
      zoo get hf-hub:my-org/resnet18-cbam-cifar10@v1
      HF_HUB_OFFLINE=1 zoo get resnet50     (cache only)

    A name that fails (unknown, or its download) is one line on stderr and the others are
    still fetched; the exit status is then that of the failures when they are all of one
    kind (2 for names that do not exist, as elsewhere), else 1.

    \b
    --json prints one object per name, in the order given:
      [{"name": str, "repo_id": str, "filename": str, "path": str, "sha256": str,
        "size": int, "verified": str}, ...]
    a name that failed is {"name": str, "error": str}.
    """
    from ..weights.factory import download

    spell = in_flags_of(click.get_current_context().command)
    rows: list[dict[str, Any]] = []
    failed: set[int] = set()
    for name in names:
        try:
            result = download(name, revision=revision, force=force)
        except ZooError as error:
            rows.append({"name": name, "error": error.render(spell)})
            failed.add(error.exit_code)
            if not as_json:
                echo_error(rows[-1]["error"])
            continue
        rows.append(result.as_dict())
        if not as_json:
            click.echo(f"{result.sha256}  {result.path}")
    if as_json:
        echo_json(rows)
    if failed:
        sys.exit(failed.pop() if len(failed) == 1 else 1)
