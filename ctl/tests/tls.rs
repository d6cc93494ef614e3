//! `manulctl ipam show` against an etcd that serves TLS only and requires
//! client certificates (the harness's `Etcd::start_tls`): with the CA and
//! client certificate, by flags or by Calico's `ETCD_*` variables, it
//! works; without them it exits 6 naming what is missing.

use std::process::{Command, Stdio};

use manul_tests::{Etcd, Need, require};

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// manulctl with `env` as its only `ETCD_*` variables.
fn ctl(env: &[(&str, &std::ffi::OsStr)], args: &[&std::ffi::OsStr]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_manulctl"));
    for var in [
        "ETCD_ENDPOINTS",
        "ETCD_CA_CERT_FILE",
        "ETCD_CERT_FILE",
        "ETCD_KEY_FILE",
        "ETCD_USERNAME",
        "ETCD_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .envs(env.iter().copied())
        .args(["--request-timeout", "3s"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run manulctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn ipam_show_over_tls_by_flags_and_by_environment() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start_tls().unwrap();
    let tls = etcd.tls().unwrap();
    etcd.put(
        "/calico/resources/v3/projectcalico.org/ippools/pool-tls",
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"pool-tls"},"spec":{"cidr":"10.90.0.0/24","blockSize":26,"ipipMode":"Never","vxlanMode":"Never","nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}}"#,
    )
    .unwrap();
    let endpoint = etcd.endpoint();
    let os = |s: &str| std::ffi::OsString::from(s);

    // Flags.
    let by_flags = ctl(
        &[],
        &[
            &os("--etcd-endpoints"),
            &os(&endpoint),
            &os("--etcd-ca-cert-file"),
            tls.ca_cert.as_os_str(),
            &os("--etcd-cert-file"),
            tls.client_cert.as_os_str(),
            &os("--etcd-key-file"),
            tls.client_key.as_os_str(),
            &os("ipam"),
            &os("show"),
        ],
    );
    assert_eq!(by_flags.code, 0, "{by_flags:?}");
    assert!(by_flags.stdout.contains("10.90.0.0/24"), "{by_flags:?}");

    // Calico's variables.
    let env = [
        ("ETCD_ENDPOINTS", std::ffi::OsStr::new(&endpoint)),
        ("ETCD_CA_CERT_FILE", tls.ca_cert.as_os_str()),
        ("ETCD_CERT_FILE", tls.client_cert.as_os_str()),
        ("ETCD_KEY_FILE", tls.client_key.as_os_str()),
    ];
    let by_env = ctl(&env, &[&os("ipam"), &os("show")]);
    assert_eq!(by_env.code, 0, "{by_env:?}");
    assert_eq!(by_env.stdout, by_flags.stdout);

    // Without the client certificate: exit 6, naming what to set.
    let no_cert = ctl(&env[..2], &[&os("ipam"), &os("show")]);
    assert_eq!(no_cert.code, 6, "{no_cert:?}");
    assert!(
        no_cert.stderr.contains("requires a client certificate")
            && no_cert.stderr.contains("ETCD_CERT_FILE"),
        "{no_cert:?}"
    );
    // Without the CA: etcd's certificate cannot be trusted.
    let no_ca = ctl(&[env[0], env[2], env[3]], &[&os("ipam"), &os("show")]);
    assert_eq!(no_ca.code, 6, "{no_ca:?}");
    assert!(
        no_ca
            .stderr
            .contains("not signed by a CA this client trusts")
            && no_ca.stderr.contains("ETCD_CA_CERT_FILE"),
        "{no_ca:?}"
    );
    // Plain HTTP to the TLS port.
    let http = endpoint.replace("https://", "http://");
    let plain = ctl(
        &[("ETCD_ENDPOINTS", std::ffi::OsStr::new(&http))],
        &[&os("ipam"), &os("show")],
    );
    assert_eq!(plain.code, 6, "{plain:?}");
    assert!(plain.stderr.contains("serves TLS"), "{plain:?}");
}
