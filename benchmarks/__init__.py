"""Speed benchmarks: run as ``python -m benchmarks.<name>``; they print tables, tests never assert speed."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no busy-waiting threads on small CPUs
