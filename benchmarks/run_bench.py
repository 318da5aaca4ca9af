"""The benchmark behind the figures in docs/performance.md: `python benchmarks/run_bench.py [options]`.

Same as `qwenkit bench`; every system runs in its own process on the same GGUF, 2 threads each.
"""
import sys

from qwenkit.cli.main import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]])
