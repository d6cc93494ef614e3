//! `manulctl patch KIND NAME -p PATCH`: change stored fields with a JSON
//! merge patch (RFC 7386): members of the patch replace the object's,
//! objects merge recursively, `null` removes a member, anything else
//! (lists included) replaces the value whole.

use serde_json::Value;

use crate::commands::edit::{self, Edited, Target};
use crate::context::Context;
use crate::error::{Failure, fail};
use crate::kind::{self, display_name};
use crate::output::emit;

pub const LONG_ABOUT: &str = "\
Change a stored object with a JSON merge patch (RFC 7386), as `calicoctl
patch` does: members of the patch replace the object's, mappings merge
member by member, null removes a member, and lists are replaced whole.
The result is checked as `apply` checks a file (every field the datastore
validates, fields that cannot change); if anything is wrong, nothing is
written (exit code 2). A patch that sets metadata.resourceVersion applies
only if the object is still at that revision (exit code 4 otherwise).

The patch is JSON (YAML flow style works too). --type strategic (calicoctl's
default) is the same as merge for these objects, as for Kubernetes custom
resources; json (RFC 6902) is not supported.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl patch ippool pool-a -p '{\"spec\":{\"natOutgoing\":false}}'
  ippool.projectcalico.org/pool-a patched

  $ manulctl patch gnp default.deny-blue -p '{\"spec\":{\"order\":50,\"selector\":null}}'
  $ manulctl patch networkpolicy allow-dns -n prod -p '{\"spec\":{\"types\":[\"Ingress\"]}}'
  $ manulctl patch ippool pool-a -p '{\"spec\":{\"cidr\":\"10.66.0.0/16\"}}'   # exit code 2
  error: IPPool \"pool-a\": spec.cidr cannot change ...";

/// Patch formats, as calicoctl names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PatchType {
    /// Strategic merge patch (calicoctl's default): a merge patch here.
    Strategic,
    /// JSON merge patch, RFC 7386.
    Merge,
    /// JSON patch, RFC 6902 (refused: not supported).
    Json,
}

/// `patch` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind (any case, plural or short name).
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// The object's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The patch: a JSON object, e.g. '{"spec":{"natOutgoing":true}}'.
    #[arg(short = 'p', long, value_name = "PATCH")]
    pub patch: String,
    /// Patch format: strategic (default, the same as merge here) or merge.
    #[arg(short = 't', long = "type", value_enum, default_value = "strategic")]
    pub patch_type: PatchType,
    /// Namespace of namespaced kinds (WorkloadEndpoint, NetworkPolicy,
    /// NetworkSet).
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
}

/// RFC 7386 section 2, `MergePatch(Target, Patch)`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else {
        return;
    };
    for (name, value) in members {
        if value.is_null() {
            t.remove(name);
        } else {
            merge_patch(t.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Parses the patch: a JSON (or YAML) mapping.
fn parse_patch(text: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(text)
        .or_else(|json_err| serde_yaml_ng::from_str(text).map_err(|_| json_err.to_string()))
        .map_err(|e| {
            fail(
                Failure::Invalid,
                format!("the patch is not JSON: {e}: give e.g. '{{\"spec\":{{...}}}}'"),
            )
        })?;
    if !value.is_object() {
        return Err(fail(
            Failure::Invalid,
            "the patch must be a JSON object, e.g. '{\"spec\":{...}}'",
        ));
    }
    Ok(value)
}

/// Runs `patch`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    if args.patch_type == PatchType::Json {
        return Err(fail(
            Failure::Invalid,
            "--type json (RFC 6902) is not supported: use a merge patch (--type merge)",
        ));
    }
    let kind = kind::parse(&args.kind)?;
    let patch = parse_patch(&args.patch)?;
    let target = Target::new(kind, &args.name, &args.namespace);
    let ds = ctx.datastore().await?;
    let edited = edit::edit(&ds, &target, |v| {
        merge_patch(v, &patch);
        Ok(())
    })
    .await?;
    let name = display_name(kind, target.namespace.as_deref(), &target.name);
    match edited {
        Edited::Changed => emit(&format!("{name} patched\n")),
        Edited::Unchanged => emit(&format!("{name} patched (no change)\n")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386 appendix A.
    #[test]
    fn rfc7386_appendix_a() {
        for (target, patch, result) in [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ] {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, result, "{target} + {patch}");
        }
    }

    #[test]
    fn patches_must_be_objects() {
        assert!(parse_patch("{\"spec\":{}}").is_ok());
        assert!(parse_patch("{spec: {order: 1}}").is_ok());
        assert!(parse_patch("[1]").is_err());
        assert!(parse_patch("{").is_err());
    }
}
