//! Reading the files `apply -f` and `delete -f` take: YAML or JSON, several
//! documents per file (`---` in YAML, one value after another in JSON),
//! each a Kubernetes-style object (`kind`, `apiVersion:
//! projectcalico.org/v3`, `metadata`, `spec`) or a list of them (`kind:
//! List` or `<Kind>List` with `items`, as `get -o yaml` prints).
//!
//! Every problem is collected, each naming the file and document (1-based),
//! so one run reports them all.

use std::io::Read;
use std::path::Path;

use manul_datastore::{API_VERSION, ResourceKind};
use serde::Deserialize;
use serde_json::Value;

use crate::kind;
use crate::object::Object;

/// Where a document came from, shown as `pools.yaml, document 2` (and
/// `, item 3` inside a List). Orders as the input does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    file: usize,
    doc: usize,
    item: usize,
    label: String,
}

impl Source {
    /// An object named on the command line (`patch`, `label`).
    pub fn command_line() -> Self {
        Source::file(0, "the command line")
    }

    /// A whole file (`file` is its position among the inputs).
    fn file(file: usize, label: &str) -> Self {
        Source {
            file,
            doc: 0,
            item: 0,
            label: label.to_owned(),
        }
    }

    /// Document `doc` (1-based) of this file.
    fn doc(&self, doc: usize) -> Self {
        Source {
            doc,
            ..self.clone()
        }
    }

    /// Item `item` (1-based) of this List document.
    fn item(&self, item: usize) -> Self {
        Source {
            item,
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)?;
        if self.doc > 0 {
            write!(f, ", document {}", self.doc)?;
        }
        if self.item > 0 {
            write!(f, ", item {}", self.item)?;
        }
        Ok(())
    }
}

/// One problem with one document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file and document.
    pub source: Source,
    /// What is wrong, and where in the document when known.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// One object read from input.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Where it came from.
    pub source: Source,
    /// The object.
    pub object: Object,
}

/// Reads `path` (`-` is standard input) as text.
fn read_input(index: usize, path: &Path) -> Result<(Source, String), Problem> {
    let label = if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let source = Source::file(index, &label);
    let problem = |message: String| Problem {
        source: source.clone(),
        message,
    };
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| problem(format!("cannot read standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read the file: {e}")))?
    };
    Ok((source, text))
}

/// The documents of one text: JSON when it starts with `{` or `[`, else
/// YAML. Empty documents are skipped; documents keep their 1-based index.
fn documents(file: &Source, text: &str) -> (Vec<(Source, Value)>, Vec<Problem>) {
    let (mut docs, mut problems) = (Vec::new(), Vec::new());
    let source = |i: usize| file.doc(i);
    if text.trim_start().starts_with(['{', '[']) {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (i, doc) in stream.enumerate() {
            match doc {
                Ok(v) => docs.push((source(i + 1), v)),
                Err(e) => {
                    problems.push(Problem {
                        source: source(i + 1),
                        message: format!("not valid JSON: {e}"),
                    });
                    break;
                }
            }
        }
    } else {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            match Value::deserialize(doc) {
                Ok(Value::Null) => {}
                Ok(v) => docs.push((source(i + 1), v)),
                Err(e) => {
                    problems.push(Problem {
                        source: source(i + 1),
                        message: format!("not valid YAML: {e}"),
                    });
                    // The parser cannot resynchronise after a syntax error.
                    break;
                }
            }
        }
    }
    (docs, problems)
}

/// Splits lists into their items.
fn flatten_lists(docs: Vec<(Source, Value)>) -> Vec<(Source, Value)> {
    let mut out = Vec::new();
    for (source, doc) in docs {
        let is_list = doc
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && doc.get("items").is_some_and(Value::is_array);
        match doc {
            Value::Object(mut map) if is_list => {
                let items = map.remove("items").unwrap_or_default();
                for (j, item) in items.as_array().into_iter().flatten().enumerate() {
                    out.push((source.item(j + 1), item.clone()));
                }
            }
            doc => out.push((source, doc)),
        }
    }
    out
}

/// One document as an object, its envelope checked: a mapping, a known
/// kind, Calico's apiVersion, a name that can be a key segment, and the
/// namespace (`default_namespace` when a namespaced object has none).
fn object_of(mut doc: Value, default_namespace: &str) -> Result<Object, String> {
    let Some(map) = doc.as_object_mut() else {
        return Err("expected an object with kind, apiVersion, metadata and spec".into());
    };
    let kind_name = match map.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err("kind must be a string".into()),
        None => {
            return Err(format!(
                "kind is missing: use one of {}",
                kind::known_kinds()
            ));
        }
    };
    let kind = kind::lookup(&kind_name).ok_or_else(|| {
        format!(
            "unknown kind {kind_name:?}: use one of {}",
            kind::known_kinds()
        )
    })?;
    map.insert("kind".into(), Value::String(kind.kind().to_owned()));
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "apiVersion {other:?} is not supported: use {API_VERSION}"
            ));
        }
        None => return Err(format!("apiVersion is missing: use {API_VERSION}")),
    }
    if !map.get("spec").is_some_and(Value::is_object) && kind != ResourceKind::Node {
        return Err("spec is missing or not a mapping".into());
    }
    if !map.contains_key("spec") {
        map.insert("spec".into(), Value::Object(Default::default()));
    }
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut object = Object::from_value(kind, doc).map_err(|e| match name {
        Some(name) => format!("{kind} {name:?}: {e}"),
        None => e,
    })?;
    if object.name().is_empty() {
        return Err("metadata.name is missing".into());
    }
    if kind.namespaced() {
        if object.meta().namespace.is_empty() {
            object.meta_mut().namespace = default_namespace.to_owned();
        }
    } else if !object.meta().namespace.is_empty() {
        return Err(format!(
            "metadata.namespace is set but {kind} is not namespaced: remove it"
        ));
    }
    object.key().path().map_err(|e| format!("metadata: {e}"))?;
    Ok(object)
}

/// Reads every file and returns every object, or every problem found.
pub fn read_files(
    paths: &[impl AsRef<Path>],
    default_namespace: &str,
) -> (Vec<Parsed>, Vec<Problem>) {
    let (mut parsed, mut problems) = (Vec::new(), Vec::new());
    for (index, path) in paths.iter().enumerate() {
        let (file, text) = match read_input(index, path.as_ref()) {
            Ok(t) => t,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let (docs, mut bad) = documents(&file, &text);
        for (source, doc) in flatten_lists(docs) {
            match object_of(doc, default_namespace) {
                Ok(object) => parsed.push(Parsed { source, object }),
                Err(message) => problems.push(Problem { source, message }),
            }
        }
        // A syntax error ends the file: it comes after what was read before it.
        problems.append(&mut bad);
    }
    (parsed, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Parsed>, Vec<Problem>) {
        let (docs, mut syntax) = documents(&Source::file(0, "f.yaml"), text);
        let (mut parsed, mut problems) = (Vec::new(), Vec::new());
        for (source, doc) in flatten_lists(docs) {
            match object_of(doc, "default") {
                Ok(object) => parsed.push(Parsed { source, object }),
                Err(message) => problems.push(Problem { source, message }),
            }
        }
        problems.append(&mut syntax);
        (parsed, problems)
    }

    #[test]
    fn multi_document_yaml() {
        let (ok, bad) = parse(
            "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\n\
             spec: {cidr: 10.0.0.0/16}\n---\n---\napiVersion: projectcalico.org/v3\n\
             kind: bgppeer\nmetadata: {name: p}\nspec: {peerIP: 192.0.2.1, asNumber: 65001}\n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].source.to_string(), "f.yaml, document 1");
        assert_eq!(ok[1].source.to_string(), "f.yaml, document 3");
        assert_eq!(ok[1].object.kind(), ResourceKind::BgpPeer);
    }

    #[test]
    fn json_stream_and_lists() {
        let (ok, bad) = parse(
            r#"{"kind":"IPPoolList","apiVersion":"projectcalico.org/v3","items":[
                 {"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}}]}
               {"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n1"}}"#,
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].source.to_string(), "f.yaml, document 1, item 1");
        assert_eq!(ok[1].object.name(), "n1");
    }

    #[test]
    fn every_envelope_problem_is_reported() {
        let (ok, bad) = parse(
            "kind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: KubeControllersConfiguration\nmetadata: {name: b}\nspec: {}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a/b}\nspec: {cidr: 10.0.0.0/16}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {}\nspec: {cidr: 10.0.0.0/16}\n---\n\
             key: [unclosed\n",
        );
        assert!(ok.is_empty());
        let msgs: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 5, "{msgs:#?}");
        assert!(
            msgs[0].contains("document 1: apiVersion is missing"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("unknown kind \"KubeControllersConfiguration\""),
            "{}",
            msgs[1]
        );
        assert!(msgs[2].contains("document 3: metadata:"), "{}", msgs[2]);
        assert!(msgs[3].contains("metadata.name is missing"), "{}", msgs[3]);
        assert!(
            msgs[4].contains("document 5: not valid YAML"),
            "{}",
            msgs[4]
        );
    }
}
