"""Attention modules of the built-in plugin, one file per variant."""
