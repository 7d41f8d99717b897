"""`python -m benchmark.report`."""
import sys

from benchmark.report import main

sys.exit(main())
