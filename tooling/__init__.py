"""The maintainer's tools: the notebook runner and generator, the benchmark, Colab's versions as a test
environment. They import `helpers`; nothing in `helpers` imports them (tests/test_layout.py)."""
