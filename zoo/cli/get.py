"""`zoo get`: weights downloaded into the Hugging Face cache and checked."""

from __future__ import annotations

import click

from .output import echo_json, json_option

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

    \b
    --json prints one object per name:
      [{"name": str, "repo_id": str, "filename": str, "path": str, "sha256": str,
        "size": int, "verified": str}, ...]
    """
    from ..weights.factory import download

    downloads = []
    for name in names:
        result = download(name, revision=revision, force=force)
        downloads.append(result)
        if not as_json:
            click.echo(f"{result.sha256}  {result.path}")
    if as_json:
        echo_json([d.as_dict() for d in downloads])
