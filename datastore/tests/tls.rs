//! The etcd client over TLS against a real etcd 3.4 that requires client
//! certificates (the harness's `Etcd::start_tls`, certificates made at test
//! time): the right CA and client certificate work; without them, or with
//! the wrong ones, the error names the problem.

use std::path::PathBuf;
use std::time::Duration;

use manul_datastore::etcd::{Datastore, Error, EtcdConfig};
use manul_tests::{Etcd, Need, require};

fn config(
    endpoint: String,
    ca: Option<&PathBuf>,
    cert: Option<(&PathBuf, &PathBuf)>,
) -> EtcdConfig {
    let mut c = EtcdConfig::new([endpoint]);
    c.ca_cert = ca.cloned();
    c.client_cert = cert.map(|c| c.0.clone());
    c.client_key = cert.map(|c| c.1.clone());
    c.dial_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(3);
    c
}

/// The error of one read through `c`.
async fn read_error(c: &EtcdConfig) -> Error {
    let ds = match Datastore::connect(c).await {
        Ok(ds) => ds,
        Err(e) => return e,
    };
    match ds.get("/calico/ipam/v2/config").await {
        Ok(v) => panic!("read succeeded without the right TLS settings: {v:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_ca_and_client_certificate_and_not_without() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start_tls().unwrap();
    let tls = etcd.tls().expect("TLS files");
    let https = etcd.endpoint();
    assert!(https.starts_with("https://127.0.0.1:"), "{https}");

    let good = config(
        https.clone(),
        Some(&tls.ca_cert),
        Some((&tls.client_cert, &tls.client_key)),
    );
    let ds = Datastore::connect(&good).await.unwrap();
    ds.create("/manul-test/tls", "over TLS").await.unwrap();
    assert_eq!(
        etcd.get("/manul-test/tls").unwrap().as_deref(),
        Some("over TLS")
    );
    assert_eq!(
        ds.get("/manul-test/tls").await.unwrap().unwrap().value,
        b"over TLS"
    );

    // (what is wrong, the config, words the error must contain)
    let other_ca = tls.other_ca_cert.display().to_string();
    let other_cert = tls.other_client_cert.display().to_string();
    for (what, c, words) in [
        (
            "no client certificate",
            config(https.clone(), Some(&tls.ca_cert), None),
            vec!["requires a client certificate", "ETCD_CERT_FILE"],
        ),
        (
            "no CA",
            config(
                https.clone(),
                None,
                Some((&tls.client_cert, &tls.client_key)),
            ),
            vec![
                "not signed by a CA this client trusts",
                "ETCD_CA_CERT_FILE is not set",
            ],
        ),
        (
            "the wrong CA",
            config(
                https.clone(),
                Some(&tls.other_ca_cert),
                Some((&tls.client_cert, &tls.client_key)),
            ),
            vec!["not signed by a CA this client trusts", other_ca.as_str()],
        ),
        (
            "a client certificate of another CA",
            config(
                https.clone(),
                Some(&tls.ca_cert),
                Some((&tls.other_client_cert, &tls.other_client_key)),
            ),
            vec!["refused the client certificate", other_cert.as_str()],
        ),
        (
            "plain HTTP",
            config(https.replace("https://", "http://"), None, None),
            vec!["serves TLS", "https://"],
        ),
    ] {
        let e = read_error(&c).await;
        let text = e.to_string();
        assert!(matches!(e, Error::Tls { .. }), "{what}: {e:?}");
        for w in words {
            assert!(text.contains(w), "{what}: {text:?} lacks {w:?}");
        }
    }

    // A TLS config pointing at a stopped etcd is unavailable, not a TLS
    // problem.
    drop(etcd);
    let e = ds.get("/manul-test/tls").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}
