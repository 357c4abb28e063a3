"""Experiments that combine training and evaluation, such as the paper's Table 1 (bin/table1)."""
