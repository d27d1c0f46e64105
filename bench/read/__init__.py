"""Read benchmark: seed 100,000 tasks, serve them with `taskql serve`, load it with wrk."""
