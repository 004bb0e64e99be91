"""What this release of the zoo is, and which plugin interface it provides.

The package version follows the releases. The plugin interface has a version of its own,
`MAJOR.MINOR`, because plugins are written against the interface, not against a release:
a minor version only adds (a new attention kind, a new optional keyword a slot may pass, a
new method of `PluginContext`, a new optional model hook); anything else is a new major
version, reached after a deprecation period. docs/plugins.md holds the promise and the
history.
"""

from __future__ import annotations

__all__ = ["INTERFACE_HISTORY", "INTERFACE_VERSION", "__version__", "parse_interface_version"]

__version__ = "0.2.0"

INTERFACE_VERSION = "1.4"
"""The plugin interface this release provides."""

INTERFACE_HISTORY: dict[str, str] = {
    "1.0": "attention kinds channel, token, sequence, pooling, alignment; families, key adapters, "
    "registry files",
    "1.1": "attention kinds window and class",
    "1.2": "optional slot keywords rd_channels (channel) and feat_size (conv); the conv kind; "
    "PluginContext.interface_version and require_interface",
    "1.3": "optional weight-tag fields num_params, gmacs and imagenet",
    "1.4": "optional weight-tag fields paper and args, preprocessing crop_mode; attention kinds and "
    "optional slot keywords of the catalogue's blocks",
}
"""What each minor version added, oldest first."""


def parse_interface_version(version: str) -> tuple[int, int]:
    """`"1.2"` -> `(1, 2)`; `ValueError` for anything not of the form `MAJOR.MINOR`."""
    major, dot, minor = str(version).partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"'{version}' is not a plugin interface version: MAJOR.MINOR, such as '1.0'")
    return int(major), int(minor)
