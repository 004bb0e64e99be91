"""The weights layer: names resolved, files fetched, checked and loaded into built models.

- `resolve`: the one resolver of model names (`name`, `name.tag`, `hf-hub:ORG/REPO[@REV]`);
- `hub`, `cache`: files from the Hugging Face Hub, their cache and integrity records;
- `header`: safetensors headers (and sharded checkpoints' indexes) checked before anything
  is allocated; pickles recognised and refused;
- `convert`: `zoo convert`, the one explicit step that reads a pickle (`weights_only=True`);
- `loading`, `adaptation`: checkpoints assigned into models built on `meta`, and made to fit
  a model that differs from them on purpose;
- `factory`: `create`, `get` and `download`, the name-taking entry points;
- `sharded`: `create_sharded`, a model sharded with FSDP2, each rank loading its slices;
- `hub_config`, `export`: the folder `zoo export` writes and `hf-hub:` names read;
- `timm_config`: timm's `config.json`, read from Hub repositories in timm's format and
  written by `zoo export` for a timm architecture.
"""
