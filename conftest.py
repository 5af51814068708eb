"""The harness's pytest plugin is registered through the ``pytest11`` entry point (pip install -e .).
This file only makes the repository importable when pytest runs from a plain checkout."""
