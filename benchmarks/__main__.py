import sys

from benchmarks import run_figures

run_figures(sys.argv[1].split(",") if len(sys.argv) > 1 else None)
