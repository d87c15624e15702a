"""A notebook-first lab for ML research engineers: from-scratch transformers, graded exercises, a training pipeline and a 90-day roadmap.

Modules:

- `mlre_lab.checks.attention`: The checks that grade the exercises on attention: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.autograd`: The checks that grade the exercises on autograd and optimizers: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.drills`: The checks that grade the timed tensor-manipulation drills of `mlre drill tensors`: each compares a learner's function with a reference on seeded inputs, edge cases included, and with torch's own op where one exists.
- `mlre_lab.checks.evaluation`: The checks that grade the exercises on evaluation: each compares a learner's function with `mlre_lab.evals` and `mlre_lab.stats` on data where a plausible mistake shows.
- `mlre_lab.checks.experiments`: The checks that grade the exercises on experiments: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.harness`: The harness behind every exercise check: run the learner's code safely and say precisely what is wrong.
- `mlre_lab.checks.inference`: The checks that grade the exercises on inference: each compares a learner's function with the library's on seeded inputs and says what is wrong.
- `mlre_lab.checks.profiling`: The checks that grade the exercises on profiling: each runs a learner's function on cases with a known answer and says what is wrong.
- `mlre_lab.checks.reviews`: Seven questions, a claims table, and a check that says when a review is finished: `mlre new review` and `mlre review check`.
- `mlre_lab.checks.small_model`: The checks that grade the exercises on the small model: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.statistics`: The checks that grade the exercises on statistics: each compares a learner's function with the library's on data where a plausible mistake shows, allowing for Monte Carlo error where the answer is random.
- `mlre_lab.checks.tensors`: The checks that grade the exercises on tensors: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.tokenizer`: The checks that grade the exercises on tokenization: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.checks.transformer`: The checks that grade the exercises on the transformer: each compares a learner's function with the reference on seeded inputs and says what is wrong.
- `mlre_lab.core`: Where code runs, how a run is made repeatable, and what to write down so a number can be trusted later.
- `mlre_lab.evals`: Metrics checked against scikit-learn, calibration (ECE with equal-width and equal-mass bins, reliability diagrams, temperature scaling), slices with bootstrap intervals and Holm-corrected flags, paired comparisons, galleries of the most confident mistakes, and a report that ends with what you would change next; `mlre eval` runs it all on a trained character model.
- `mlre_lab.infer`: Serving a trained model: batched generation with left padding, the KV cache and its memory, latency against throughput, int8 weight-only quantisation, and `torch.compile` for the decode step.
- `mlre_lab.lab.cli`: One entry point for the lab's tools: `mlre doctor`, and the subcommands later lessons add.
- `mlre_lab.lab.drill`: A question bank for the seven rounds of a research-engineering loop with model answers kept hidden until asked for, timed tensor drills graded like every exercise, and project-defense drills filled with your own numbers.
- `mlre_lab.lab.exercises`: One source for every exercise: the answer key in solutions/ is written once, and exercises/ is generated from it.
- `mlre_lab.lab.grader`: `mlre grade`: run an exercise notebook in a fresh kernel, cell by cell, and score each task by its check against the lab's answer key.
- `mlre_lab.lab.progress`: A small SQLite store of every graded attempt, and the commands that read it: `mlre progress` and `mlre today`.
- `mlre_lab.lab.project`: A research result someone else can rerun with two commands: `mlre new project` scaffolds the repository, the README is a research memo, and the tests fail for the right reasons.
- `mlre_lab.lab.report`: The reproduction report's skeleton: every section a reader expects, with the environment and the ablation table filled in from the runs, never typed.
- `mlre_lab.lab.review`: `mlre new review` writes a paper review from the seven-question template; `mlre review check` says what is left to answer in a review, a report or a set of drill answers.
- `mlre_lab.lab.roadmap`: Ninety days, one row each: the goal, the lesson, the exercises, what you hand in, and how long it should take.
- `mlre_lab.nn.attention`: Scaled dot-product attention written out, masks of every kind, multi-head and grouped-query attention, the fused fast path, and a KV cache for generation.
- `mlre_lab.nn.options`: The names a model configuration may choose from, in a module of their own so that configs can validate a choice without loading the model.
- `mlre_lab.nn.pretrained`: `GPT.from_pretrained`: a Hugging Face Hub folder (`config.json` and safetensors) read into the lab's GPT, every config field translated or refused by name.
- `mlre_lab.nn.transformer`: Norms, activations, position encodings, pre-norm blocks and one GPT that is GPT-2 or Llama by configuration; loaders for both published checkpoint layouts, and generation with a KV cache.
- `mlre_lab.perf`: Timers a GPU cannot fool, peak memory, FLOPs counted two ways, MFU, torch.profiler's trace, and attention's seq².
- `mlre_lab.plot`: The few figures every lesson draws — curves, heatmaps, functions — drawn one way, so lessons and your own experiments share them.
- `mlre_lab.repro`: A paper's claim, rebuilt small enough to run on a laptop, with a baseline, ablations over seeds, confidence intervals, a leakage audit of the split, and an honest account of what did and did not reproduce.
- `mlre_lab.scratch.autograd`: A scalar autograd engine, stable softmax and cross-entropy, SGD and AdamW, a learning-rate schedule and gradient clipping — each matched against torch.
- `mlre_lab.scratch.small_model`: An MLP and a small CNN on scikit-learn's bundled digits, a compact training loop, and five tests that catch the bugs a loss curve hides.
- `mlre_lab.scratch.tensors`: Index, broadcast, rearrange and contract tensors with named dimensions, and check every step.
- `mlre_lab.shapes`: Say what shape a tensor must have, in words, and get an error that names the dimension when it does not.
- `mlre_lab.stats`: Seed variance and how many seeds you need, confidence intervals (t and bootstrap), paired comparisons (paired bootstrap, permutation test, McNemar), Holm–Bonferroni for many comparisons, effect sizes, and what "significant" does not mean.
- `mlre_lab.sweep`: One number from one seed is an anecdote. `mlre sweep` runs every cell of a grid with several seeds, skips what already finished, and reports each cell as a mean with a 95% confidence interval.
- `mlre_lab.text.tokenizer`: Turning text into integers: a character tokenizer, then byte-level BPE as GPT-2 does it, trained from scratch.
- `mlre_lab.train.checkpoint`: Save everything a run needs to continue bit for bit, so that a crash at any instant costs at most the steps since the last checkpoint — and never the checkpoint itself.
- `mlre_lab.train.config`: A training run is described by one TOML file; the file is checked before anything starts, and the resolved version is saved next to the results.
- `mlre_lab.train.data`: The default corpus is Python's own standard library; any text file or directory can be named instead. Documents are split by document, checked for leakage and encoding problems, tokenized once and cached.
- `mlre_lab.train.loop`: One command trains a model from a config file and leaves behind everything needed to trust, resume, compare and repeat the result: the resolved config, the environment, the data's hash, metrics, TensorBoard logs and checkpoints."""

__version__ = "0.1.0"
