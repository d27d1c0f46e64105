"""Read benchmark: seed tasks, serve them with `taskql serve` (and a peer), load them with wrk."""
