//! (skeleton: filled in by its issue)

pub mod forge;
