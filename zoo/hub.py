"""Fetching published weights from the Hugging Face Hub.

This is the only module that imports `huggingface_hub`. Files land in the standard Hugging
Face cache, shared with timm and transformers; `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_OFFLINE`
and `HF_TOKEN` are honoured by `huggingface_hub` itself.
"""

from __future__ import annotations

from pathlib import Path

from .errors import HubError
from .registry import Resolved

__all__ = ["fetch"]


def fetch(resolved: Resolved) -> Path:
    """The local path of a weight tag's file, downloaded into the cache if needed."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    weights = resolved.weights
    if weights is None:
        raise HubError(f"'{resolved}' names no weight tag")
    try:
        return Path(hf_hub_download(weights.hf_hub_id, weights.filename, revision=weights.revision))
    except LocalEntryNotFoundError:
        raise HubError(
            f"{resolved}: {weights.hf_hub_id}/{weights.filename} is not in the cache and the Hub "
            "cannot be reached"
        ) from None
    except HfHubHTTPError as error:
        raise HubError(
            f"{resolved}: downloading {weights.hf_hub_id}/{weights.filename} failed: {error}"
        ) from None
