"""peerflow benchmarks: latency, scale, convergence, emulation and NVFlare side by side."""
