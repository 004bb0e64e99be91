"""Changing a built model: its config with changes, and where the modules it gets live."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from torch import nn

__all__ = ["factory_of", "reconfigured"]

Config = TypeVar("Config", bound=BaseModel)


def reconfigured(config: Config, **changes: Any) -> Config:
    """A frozen config with `changes`, checked as the config checks itself.

    Raises:
        ValueError: The changes do not fit the config, in one line.
    """
    try:
        return type(config).model_validate({**dict(config), **changes})
    except ValidationError as error:
        reasons = "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors())
        raise ValueError(reasons) from None


def factory_of(model: nn.Module) -> dict[str, Any]:
    """`device` and `dtype` of a model's parameters, for modules made to replace its own."""
    first = next(model.parameters())
    return {"device": first.device, "dtype": first.dtype}
