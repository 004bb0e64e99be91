"""`zoo_config.json`: what a folder written by `zoo export` (and the Hub repository it is
uploaded to) builds and loads, in the registry's own schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import HubError
from ..registry.schema import NAME_PATTERN, ModelEntry, WeightTag
from ..registry.source import describe_errors

__all__ = ["CONFIG_FILENAME", "WEIGHTS_FILENAME", "HubConfig", "read_hub_config", "read_json_config"]

CONFIG_FILENAME = "zoo_config.json"
WEIGHTS_FILENAME = "model.safetensors"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubConfig(_Strict):
    """`zoo_config.json`: what `hf-hub:ORG/REPO` builds and loads."""

    zoo_config: Literal[1] = Field(default=1, description="format version")
    architecture: str | None = Field(default=None, description="the registry name it was exported from")
    builder: str = Field(pattern=NAME_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    paper: str | None = None
    weights: WeightTag = Field(description="a weight tag without location: the folder's own file")

    @model_validator(mode="after")
    def _weights_are_the_folders_own(self) -> HubConfig:
        if self.weights.hf_hub_id is not None or self.weights.path is not None:
            raise ValueError("weights: hf_hub_id and path are not given here; the file is the folder's own")
        return self

    def to_entry(
        self, *, repo_id: str | None = None, revision: str | None = None, folder: Path | None = None, tag: str
    ) -> ModelEntry:
        """The registry entry this config stands for: its weights in the Hub repository
        `repo_id@revision`, or in the local `folder` it was read from."""
        where = (
            {"hf_hub_id": repo_id, "revision": revision}
            if folder is None
            else {"path": str(Path(folder, self.weights.filename).resolve())}
        )
        weights = self.weights.model_copy(update=where)
        return ModelEntry(
            builder=self.builder,
            args=self.args,
            description=self.description,
            paper=self.paper,
            weights={tag: weights},
        )


def read_hub_config(path: Path, *, name: str) -> HubConfig:
    """Read and validate a `zoo_config.json`; `HubError` in one line if it is not one."""
    return read_json_config(path, HubConfig, name=name, what=f"{CONFIG_FILENAME} is not a valid zoo config")


Config = TypeVar("Config", bound=BaseModel)


def read_json_config(path: Path, schema: type[Config], *, name: str, what: str) -> Config:
    """A JSON object read from `path` and validated by `schema`; else `HubError` in one line,
    `"{name}: {what}: {reason}"`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object is expected, not {type(data).__name__}")
        return schema.model_validate(data)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, ValidationError):
            reason = describe_errors(error)
        else:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HubError(f"{name}: {what}: {reason}") from None
