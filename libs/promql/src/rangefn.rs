//! Functions over the samples of a range vector (`rate`, `*_over_time`, …).
//! Owned by the functions work; see the module list in the crate docs.
