//! Shared pieces of confd's etcd tests: a TCP proxy on loopback that can
//! cut confd off from etcd (an outage without stopping etcd), and helpers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use manul_datastore::etcd::{Datastore, EtcdConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Guard on every wait: far above what any step takes, only there so a
/// broken test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn config(endpoint: String) -> EtcdConfig {
    let mut c = EtcdConfig::new(vec![endpoint]);
    c.dial_timeout = Duration::from_secs(1);
    c.request_timeout = Duration::from_secs(3);
    c
}

pub async fn connect(endpoint: String) -> Datastore {
    Datastore::connect(&config(endpoint))
        .await
        .expect("connect")
}

/// Forwards 127.0.0.1:<port> to `target`; [`Proxy::cut`] drops every
/// connection and refuses new ones until [`Proxy::restore`].
pub struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Proxy {
    pub async fn start(target_url: &str) -> Proxy {
        let target: SocketAddr = target_url
            .trim_start_matches("http://")
            .parse()
            .expect("etcd endpoint");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            open,
            conns,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
