//! `filegen` (being written).

fn main() {}
