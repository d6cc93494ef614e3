//! Test helper for the crash-safety test (`tests/crash.rs`): assigns and
//! releases pod addresses in a loop until killed, so SIGKILL lands between
//! any two etcd writes.
//!
//! Usage: `manul-ipam-crash-child <etcd endpoint> <host>`. Prints `ready`
//! after its first assignment, then one line per assignment.

use std::collections::VecDeque;
use std::io::Write;

use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_ipam::{AutoAssignArgs, Ipam};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(endpoint), Some(host)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: manul-ipam-crash-child <etcd endpoint> <host>");
        std::process::exit(2);
    };
    let ds = match Datastore::connect(&EtcdConfig::new([endpoint.as_str()])).await {
        Ok(ds) => ds,
        Err(e) => {
            eprintln!("connect: {e}");
            std::process::exit(1);
        }
    };
    let ipam = Ipam::new(ds);
    let pid = std::process::id();
    let mut held: VecDeque<String> = VecDeque::new();
    let mut out = std::io::stdout();
    for n in 0u64.. {
        let handle = format!("k8s-pod-network.crash-{pid}-{n}");
        let args = AutoAssignArgs {
            handle_id: handle.clone(),
            num_v4: 1,
            host: host.clone(),
            ..AutoAssignArgs::default()
        };
        match ipam.auto_assign(&args).await {
            Ok(ips) => {
                held.push_back(handle);
                let _ = writeln!(
                    out,
                    "{}",
                    if n == 0 {
                        "ready".to_string()
                    } else {
                        format!("{ips:?}")
                    }
                );
                let _ = out.flush();
            }
            Err(e) => eprintln!("assign: {e}"),
        }
        if held.len() > 4 {
            if let Some(h) = held.pop_front() {
                if let Err(e) = ipam.release_by_handle(&h).await {
                    eprintln!("release: {e}");
                }
            }
        }
    }
}
