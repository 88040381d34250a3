"""The benchmark harness (`manage.py bench`, `make bench`): see devtools.bench.run."""
