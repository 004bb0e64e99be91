"""SimAM and global-context attention, and a small family that uses them."""

from importlib.resources import files


def register(zoo):
    zoo.add_attention("simam", "zoo_simam.attention:SimAM", kind="channel")
    zoo.add_attention("global_context", "zoo_simam.attention:GlobalContext", kind="channel")
    zoo.add_builder("tinynet", "zoo_simam.model:family")
    zoo.add_models(files(__name__) / "registry.yaml")
