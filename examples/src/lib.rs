//! Cross-crate examples live in `examples/examples/`.
