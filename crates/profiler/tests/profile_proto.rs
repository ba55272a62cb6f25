//! The hand-written prost messages (src/pprof.rs) against google/pprof's own profile.proto:
//! every field we declare has the number, type and cardinality the proto gives it. Fields
//! the proto has and we never write (drop_frames, Line.column, ...) may be left out.
//!
//! The proto comes from Debian's golang-github-google-pprof-dev (`make deps` installs it);
//! PROFILE_PROTO points elsewhere.

use std::collections::BTreeMap;

const DEBIAN_PROTO: &str = "/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto";
const OURS: &str = include_str!("../src/pprof.rs");

/// (message, field) → (number, type, repeated)
type Fields = BTreeMap<(String, String), (u32, String, bool)>;

/// `message Name {` ... `[repeated] type name = N;` ... `}` (profile.proto nests nothing).
fn proto_fields(text: &str) -> Fields {
    let mut fields = Fields::new();
    let mut message = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("message ") {
            message = Some(rest.trim_end_matches('{').trim().to_owned());
        } else if line.starts_with('}') {
            message = None;
        } else if let (Some(m), Some((decl, number))) = (&message, line.split_once('=')) {
            let words: Vec<&str> = decl.split_whitespace().collect();
            let (repeated, ty, name) = match words.as_slice() {
                ["repeated", ty, name] => (true, *ty, *name),
                [ty, name] => (false, *ty, *name),
                _ => panic!("unexpected field line in profile.proto: {line}"),
            };
            let number = number.trim().trim_end_matches(';').trim().parse().unwrap();
            fields.insert(
                (m.clone(), name.to_owned()),
                (number, ty.to_owned(), repeated),
            );
        }
    }
    fields
}

/// `pub struct Name {` then `#[prost(kind, [repeated|optional,] tag = "N")]` `pub name: T,`
fn our_fields(text: &str) -> Fields {
    let mut fields = Fields::new();
    let (mut message, mut attr) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            message = Some(rest.trim_end_matches('{').trim().to_owned());
        } else if line == "}" {
            message = None;
        } else if let Some(a) = line.strip_prefix("#[prost(") {
            attr = Some(a.trim_end_matches(")]").to_owned());
        } else if let (Some(m), Some(a)) = (&message, attr.take()) {
            let name = line
                .strip_prefix("pub ")
                .unwrap()
                .split(':')
                .next()
                .unwrap();
            let parts: Vec<&str> = a.split(',').map(str::trim).collect();
            let number = parts
                .iter()
                .find_map(|p| p.strip_prefix("tag = "))
                .unwrap()
                .trim_matches('"')
                .parse()
                .unwrap();
            let repeated = parts.contains(&"repeated");
            let ty = if parts[0] == "message" {
                line.rsplit(['<', ' '])
                    .next()
                    .unwrap()
                    .trim_end_matches([',', '>'])
                    .to_owned()
            } else {
                parts[0].to_owned()
            };
            let name = name.trim_start_matches("r#").to_owned();
            fields.insert((m.clone(), name), (number, ty, repeated));
        }
    }
    fields
}

#[test]
fn our_messages_match_profile_proto() {
    let path = std::env::var("PROFILE_PROTO").unwrap_or_else(|_| DEBIAN_PROTO.to_owned());
    let proto = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}): `make deps` installs golang-github-google-pprof-dev")
    });
    let theirs = proto_fields(&proto);
    let ours = our_fields(OURS);
    assert!(
        theirs.len() > 40,
        "parsed only {} fields of {path}",
        theirs.len()
    );
    assert!(ours.len() > 35, "parsed only {} of our fields", ours.len());
    let wrong: Vec<String> = ours
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .map(|((m, f), v)| {
            format!(
                "{m}.{f}: ours {v:?}, profile.proto {:?}",
                theirs.get(&(m.clone(), f.clone()))
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "fields that disagree with {path}:\n{}",
        wrong.join("\n")
    );
}
