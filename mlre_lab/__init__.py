"""A notebook-first lab for ML research engineers: from-scratch transformers, graded exercises, a training pipeline and a 90-day roadmap.

Modules:

- `mlre_lab.nn.attention`: Scaled dot-product attention written out, masks of every kind, multi-head and grouped-query attention, the fused fast path, and a KV cache for generation.
- `mlre_lab.nn.transformer`: Norms, activations, position encodings, pre-norm blocks and one GPT that is GPT-2 or Llama by configuration; loaders for both published checkpoint layouts, and generation with a KV cache.
- `mlre_lab.plot`: The few figures every lesson draws — curves, heatmaps, functions — drawn one way, so lessons and your own experiments share them.
- `mlre_lab.scratch.small_model`: An MLP and a small CNN on scikit-learn's bundled digits, a compact training loop, and five tests that catch the bugs a loss curve hides.
- `mlre_lab.train.checkpoint`: Save everything a run needs to continue bit for bit, so that a crash at any instant costs at most the steps since the last checkpoint — and never the checkpoint itself.
- `mlre_lab.train.config`: A training run is described by one TOML file; the file is checked before anything starts, and the resolved version is saved next to the results.
- `mlre_lab.train.data`: The default corpus is Python's own standard library; any text file or directory can be named instead. Documents are split by document, checked for leakage and encoding problems, tokenized once and cached.
- `mlre_lab.train.loop`: One command trains a model from a config file and leaves behind everything needed to trust, resume, compare and repeat the result: the resolved config, the environment, the data's hash, metrics, TensorBoard logs and checkpoints."""

__version__ = "0.1.0"
