"""The study: the run registry, one run and its saved artefacts, results, analysis, timing, the peer."""
