//! Kubernetes adapters: the objects the operator builds and reads, and how it writes status.

pub mod backups;
pub mod cache;
pub mod cluster_status;
pub mod index;
pub mod jobs;
pub mod restore;
