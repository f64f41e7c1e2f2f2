//! criterion benches for certauth; see `benches/` and BENCHMARKS.md.
