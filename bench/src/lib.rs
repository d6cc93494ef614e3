//! manul's BGP benchmarks.
//!
//! Two tiny BGP speakers built on manul's wire codec, and the pieces they
//! share: [`blaster`](../blaster/index.html) opens a session and writes a
//! pre-encoded full table as fast as the socket takes it;
//! [`sink`](../sink/index.html) accepts a session and reports when it holds
//! N prefixes. The `bgp-bench` driver runs them against manul-bgpd, BIRD 2
//! and GoBGP in network namespaces and writes `RESULTS.md`.
//!
//! Neither speaker is meant to be a correct BGP implementation beyond what
//! a benchmark needs: OPEN/KEEPALIVE handshake, UPDATEs, keepalives.

pub mod clock;
pub mod counter;
pub mod iperf;
pub mod machine;
pub mod pods;
pub mod prefixes;
pub mod session;
pub mod updates;
