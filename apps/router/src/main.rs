//! `router` (being written).

fn main() {}
