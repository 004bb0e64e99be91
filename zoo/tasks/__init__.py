"""The tasks layer: using a model once it is built.

- `catalog`: what the zoo holds, and a description of each model;
- `preprocessing`: eval transforms of a weight tag (PIL and torch only);
- `labels`: the class names of a weight tag;
- `inference`: a model ready for inference (weights, eval mode, device, dtype);
- `predict`: top-k classes and embeddings of images and image files;
- `ranks`: many inputs shared among torchrun's ranks, results gathered in order;
- `maps`, `sequence_maps`, `heatmaps`: attention maps over images and between sequences, as
  pictures; `attention_pictures`: the pictures `zoo attn` draws, described;
- `flops`: multiply-adds, FLOPs, parameters and activations by operator and module, on meta;
  `flops_plot` draws how they grow with the input size;
- `bench`: throughput (its FLOPs are those of `flops`);
- `graph_export`: one file that runs without the zoo, verified against the model, in the
  formats of `export_onnx` (ONNX Runtime) and `export_pt2` (AOTInductor packages);
  `packaged`: a package run for predictions and embeddings, with no build.
"""
