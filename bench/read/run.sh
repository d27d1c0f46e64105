#!/bin/sh
# Read benchmark; arguments go to `python -m bench.read` (see bench/README.md).
cd "$(dirname "$0")/../.." && exec .venv/bin/python -m bench.read "$@"
