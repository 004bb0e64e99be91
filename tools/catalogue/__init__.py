"""The registry's catalogue files, made from timm's published facts.

Each timm module the zoo carries has a translator here (`vision_transformer.py`, `resnet.py`,
...): it reads one architecture's constructor arguments, as timm 1.0.31 builds it, and says
which zoo builder takes it with which arguments, in the zoo's own vocabulary. `python -m
tools.catalogue` checks the translations against the checkpoint layouts and writes
`plugins/registry/<module>.yaml`; see `__main__.py`.
"""
