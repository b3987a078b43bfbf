"""Benchmarks: CPU, memory and request counts of the pipelines against the loopback emulators."""
