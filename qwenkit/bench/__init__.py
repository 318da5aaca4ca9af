"""Side-by-side benchmarks: each system runs in its own process so peak memory is its own."""
