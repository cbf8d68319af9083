"""pytest --nbmake runs these notebooks on the offline tiny model, writing to a fresh folder.

The kernel inherits these variables; tests/test_demo.py reads what notebook 04 wrote there.
"""
import os
import tempfile

from helpers.notebooks import TINY_ENV

for name, value in TINY_ENV.items():  # an explicit TUTORIAL_* in the shell wins
    os.environ.setdefault(name, value)
os.environ["TUTORIAL_OUTPUT_DIR"] = os.environ["TUTORIAL_NBMAKE_OUTPUT"] = tempfile.mkdtemp(prefix="tutorial-")
