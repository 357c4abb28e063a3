"""Clean and corruption evaluation and the project's one report writer.

sources: where corrupted images come from (tfds, a CIFAR-10-C folder, on-the-fly generation);
accuracy: batched top-1 counts; corruption_eval: every corruption x severity for several models (bin/eval_c);
report: JSON, CSV and the paper's Table 1; plots: PNG figures; make_c: writing a CIFAR-10-C layout set (bin/make_c).
"""
