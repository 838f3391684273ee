//! The decision core: every choice the controllers make, as pure functions of what was observed and
//! of `now`, which the shell reads once per reconcile. Nothing here holds a client, reads the clock or
//! awaits, so every rule is table-tested.

pub mod admission;
pub mod cluster;
pub mod deletion;
pub mod limits;
pub mod note;
pub mod plan;
pub mod requeue;
pub mod restore;
pub mod schedule;
pub mod shard;
