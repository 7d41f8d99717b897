"""`python -m benchmark.tracking replay JOURNAL...` | `reap [--tracking-uri URI] [--experiment NAME ...]`."""
import sys

from benchmark.tracking.cli import main

sys.exit(main())
