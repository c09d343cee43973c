//! End-to-end pipeline benchmark (publish → card stored → delivery message published).
fn main() {}
