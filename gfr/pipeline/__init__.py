"""Execution: the sweep of run notebooks (serially or as Ray tasks), papermill execution, Ray and sharded extraction."""
