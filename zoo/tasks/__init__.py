"""The tasks layer: using a model once it is built.

- `catalog`: what the zoo holds, and a description of each model;
- `preprocessing`: eval transforms of a weight tag (PIL and torch only);
- `labels`: the class names of a weight tag;
- `predict`: top-k classes and embeddings of images;
- `ranks`: many inputs shared among torchrun's ranks, results gathered in order;
- `maps`: attention maps as pictures;
- `flops`: multiply-adds, FLOPs, parameters and activations by operator and module, on meta;
  `flops_plot` draws how they grow with the input size;
- `bench`: throughput (its FLOPs are those of `flops`).
"""
