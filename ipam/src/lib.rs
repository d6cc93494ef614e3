//! manul's IP address management: pools, blocks, affinities, handles.
//!
//! [`block`] is the pure arithmetic of one allocation block (which ordinal
//! is which address, FIFO reuse, attributes, sequence numbers); the
//! allocator that reads and writes blocks in etcd builds on it.

pub mod block;
