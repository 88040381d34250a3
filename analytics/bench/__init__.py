"""The benchmark harness (`manage.py bench`, `make bench`): see analytics.bench.run."""
