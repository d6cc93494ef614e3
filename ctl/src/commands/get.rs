//! `manulctl get KIND [NAME...]`: show stored objects as a table, JSON or
//! YAML.
//!
//! JSON and YAML print objects as stored, with `metadata.resourceVersion`
//! set to the key's revision: one object when one name is given, else a
//! `<Kind>List` (`{"apiVersion","kind":"IPPoolList","metadata":
//! {"resourceVersion"},"items":[...]}`), which `apply -f` reads back.

use manul_datastore::keys::Key;
use manul_datastore::resources::{BgpConfiguration, GLOBAL_NAME};
use manul_datastore::{API_VERSION, Datastore, ResourceKind};
use serde_json::{Value, json};

use crate::cli::Output;
use crate::context::Context;
use crate::error::{Failure, etcd, fail};
use crate::kind;
use crate::output::columns::{self, Extra};
use crate::output::{emit, serialize, table};
use crate::store::{self, Stored};

pub const LONG_ABOUT: &str = "\
Show objects of one kind: all of them, or the ones named. KIND is a kind name
in any case (IPPool, ippool), its plural (ippools) or a short name (ipp,
bgpp, bgpconfig, wep).

The table shows effective values (defaults filled in); -o wide adds columns.
-o json and -o yaml print the objects as stored, with
metadata.resourceVersion: one object for one name, else a List that
`manulctl apply -f` takes back.

Columns:
  IPPool            NAME CIDR BLOCKSIZE IPIP VXLAN NAT DISABLED SELECTOR
                    (wide: DISABLEBGPEXPORT ALLOWEDUSES ASSIGNMENTMODE)
  BGPPeer           NAME PEERIP NODE ASN   (NODE is (global) for every node)
                    (wide: LOCALASN SOURCEADDRESS NEXTHOPMODE FILTERS PASSWORD
                     MAXRESTARTTIME KEEPALIVETIME TTLSECURITY)
  BGPConfiguration  NAME LOGSEVERITY MESHENABLED ASNUMBER
                    (wide: LISTENPORT BINDMODE CLUSTERIPS EXTERNALIPS
                     LOADBALANCERIPS COMMUNITIES)
  BGPFilter         NAME EXPORTV4 IMPORTV4 EXPORTV6 IMPORTV6 (rule counts)
  Node              NAME ASN IPV4 IPV6  (ASN in brackets: the global one)
                    (wide: RRCLUSTERID IPIPTUNNELADDR VXLANTUNNELADDR)
  WorkloadEndpoint  [NAMESPACE] NAME WORKLOAD NODE NETWORKS INTERFACE
                    (wide: CONTAINERID MAC PROFILES)
  NetworkPolicy, GlobalNetworkPolicy   [NAMESPACE] NAME (wide: ORDER SELECTOR)
  NetworkSet, GlobalNetworkSet         [NAMESPACE] NAME (wide: NETS)
  HostEndpoint      NAME NODE (wide: INTERFACE IPS PROFILES)
  Profile, FelixConfiguration          NAME";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl get ippools
  NAME     CIDR           BLOCKSIZE   IPIP    VXLAN   NAT    DISABLED   SELECTOR
  pool-a   10.65.0.0/16   26          Never   Never   true   false      all()

  $ manulctl get bgppeer tor-1
  NAME    PEERIP      NODE       ASN
  tor-1   192.0.2.1   (global)   65001

  $ manulctl get ippool pool-a -o yaml
  apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    creationTimestamp: '2025-01-01T00:00:00Z'
    name: pool-a
    resourceVersion: '42'
    uid: 0c0b5a3e-...
  spec:
    blockSize: 26
    cidr: 10.65.0.0/16
    ...

  $ manulctl get bgpconfig -o json      # {\"kind\": \"BGPConfigurationList\", \"items\": [...]}
  $ manulctl get wep -A                 # workload endpoints in every namespace
  $ manulctl get ippool missing         # exit code 3
  error: IPPool \"missing\" not found: list what exists with `manulctl get ippools`";

/// `get` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind: IPPool, BGPConfiguration, BGPPeer, BGPFilter, Node,
    /// WorkloadEndpoint, NetworkPolicy, GlobalNetworkPolicy, NetworkSet,
    /// GlobalNetworkSet, HostEndpoint, Profile or FelixConfiguration (any
    /// case, plural or short name).
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// Names to show; all objects of the kind when none.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Namespace of namespaced kinds (WorkloadEndpoint, NetworkPolicy,
    /// NetworkSet) [default: default].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace (namespaced kinds).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

/// Which namespace to read: `Some` for one, `None` for all (or a
/// cluster-wide kind).
fn namespace_of(kind: ResourceKind, args: &Args) -> anyhow::Result<Option<String>> {
    if !kind.namespaced() {
        if args.namespace.is_some() || args.all_namespaces {
            return Err(fail(
                Failure::Invalid,
                format!("{kind} is not namespaced: drop -n / --all-namespaces"),
            ));
        }
        return Ok(None);
    }
    if args.all_namespaces {
        if !args.names.is_empty() {
            return Err(fail(
                Failure::Invalid,
                "give -n NAMESPACE with names, not --all-namespaces",
            ));
        }
        return Ok(None);
    }
    Ok(Some(
        args.namespace.clone().unwrap_or_else(|| "default".into()),
    ))
}

/// The named objects; the error lists every missing one (exit code 3).
async fn get_named(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
    names: &[String],
) -> anyhow::Result<Vec<Stored>> {
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for name in names {
        let key = match namespace {
            Some(ns) => Key::namespaced(kind, ns, name.as_str()),
            None => Key::resource(kind, name.as_str()),
        };
        let path = key
            .path()
            .map_err(|e| fail(Failure::Invalid, format!("{kind} name {name:?}: {e}")))?;
        match store::get(ds, kind, &path).await? {
            Some(s) => found.push(s),
            None => missing.push(match namespace {
                Some(ns) => format!("{kind} {name:?} not found in namespace {ns:?}"),
                None => format!("{kind} {name:?} not found"),
            }),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let hint = format!(
        ": list what exists with `manulctl get {}{}`",
        kind.plural(),
        if kind.namespaced() { " -A" } else { "" }
    );
    Err(fail(
        Failure::NotFound,
        format!("{}{hint}", missing.join("; ")),
    ))
}

/// The global AS number, for the Node table.
async fn global_as(ds: &Datastore) -> anyhow::Result<Option<manul_datastore::AsNumber>> {
    let key = Key::resource(ResourceKind::BgpConfiguration, GLOBAL_NAME)
        .path()
        .map_err(|e| fail(Failure::General, e.to_string()))?;
    let config = ds
        .get(&key)
        .await
        .map_err(etcd("reading the global BGPConfiguration"))?;
    let asn = config
        .and_then(|kv| BgpConfiguration::from_json(&kv.value).ok())
        .map(|c| c.spec.as_number_or_default())
        .unwrap_or(manul_datastore::asn::DEFAULT_AS_NUMBER);
    Ok(Some(asn))
}

/// Runs `get`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let kind = kind::parse(&args.kind)?;
    let namespace = namespace_of(kind, args)?;
    let ds = ctx.datastore().await?;
    let (objects, revision) = if args.names.is_empty() {
        store::list(&ds, kind, namespace.as_deref()).await?
    } else {
        let found = get_named(&ds, kind, namespace.as_deref(), &args.names).await?;
        let rev = found.iter().map(|s| s.mod_revision).max().unwrap_or(0);
        (found, rev)
    };
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            let value = if args.names.len() == 1 && objects.len() == 1 {
                objects[0].to_output()
            } else {
                json!({
                    "apiVersion": API_VERSION,
                    "kind": format!("{}List", kind.kind()),
                    "metadata": {"resourceVersion": revision.to_string()},
                    "items": objects.iter().map(Stored::to_output).collect::<Vec<Value>>(),
                })
            };
            emit(&serialize(&value, format)?);
        }
        format @ (Output::Table | Output::Wide) => {
            if objects.is_empty() {
                let where_ = match &namespace {
                    Some(ns) if kind.namespaced() => format!(" in namespace {ns:?}"),
                    _ => String::new(),
                };
                eprintln!("No {} found{where_}.", kind.plural());
                return Ok(());
            }
            let extra = Extra {
                global_as: if kind == ResourceKind::Node {
                    global_as(&ds).await?
                } else {
                    None
                },
                namespace_column: kind.namespaced() && namespace.is_none(),
            };
            let refs: Vec<_> = objects.iter().map(|s| &s.object).collect();
            let (headers, rows) = columns::table(&refs, format == Output::Wide, &extra);
            emit(&table::render(&headers, &rows));
        }
    }
    Ok(())
}
