//! `simulator` (being written).

fn main() {}
