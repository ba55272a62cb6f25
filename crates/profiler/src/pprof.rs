//! The pprof profile format (google/pprof's profile.proto, as `go tool pprof` reads it) and a
//! builder that turns stacks of addresses into a profile: real addresses in every location,
//! a mapping of the executable with its file name and GNU build id (so tools can symbolize
//! against the split debug file for file:line), and function names from our symbol table.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

use crate::exe::Mapping as ExeMapping;

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

impl Profile {
    /// Gzip-compressed protobuf, as Go's /debug/pprof serves it.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(&self.encode_to_vec());
        gz.finish().unwrap_or_default()
    }

    pub fn string(&self, i: i64) -> &str {
        self.string_table.get(i as usize).map_or("", String::as_str)
    }
}

/// A function of this program named by its symbol table.
#[derive(Clone, Debug)]
pub struct Symbol {
    /// Demangled, without the hash: `hyper::proto::h1::role::Server::encode`.
    pub name: String,
    /// The linker's (mangled) name. pprof treats a function whose name equals its system name
    /// as not yet demangled and strips everything in <...> from it: `<A as B>::poll` would
    /// print as `::poll`.
    pub system_name: String,
    /// Offset of the address in the function (Go's `name+0xOFF`).
    pub offset: u64,
}

/// The function at `addr`, from this program's own symbol table. Never from DWARF: the names
/// stay the same whether or not a debug file lies beside the binary (file:line is for tools
/// that read the debug file: `go tool pprof -lines` with PPROF_BINARY_PATH).
pub fn symbolize(addr: u64) -> Option<Symbol> {
    let (mangled, offset) = crate::unwind::init().ok()?.function_at(addr)?;
    let name = match rustc_demangle::try_demangle(mangled) {
        Ok(d) => format!("{d:#}"),
        Err(_) => mangled.to_owned(),
    };
    Some(Symbol {
        name,
        system_name: mangled.to_owned(),
        offset,
    })
}

/// How many innermost frames of `stack` belong to functions that `internal` matches (e.g. the
/// allocator and the sampler under a heap sample), so a profile can start at their caller.
pub(crate) fn leading_frames(stack: &[u64], internal: impl Fn(&str) -> bool) -> usize {
    stack
        .iter()
        .take_while(|&&a| symbolize(a).is_some_and(|s| internal(&s.name)))
        .count()
}

/// Builds a profile from stacks; interns strings, locations and functions.
pub struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    locations: HashMap<u64, u64>,
    named_locations: HashMap<String, u64>,
    functions: HashMap<(String, String), u64>,
    mappings: Vec<ExeMapping>,
}

impl Builder {
    /// `sample_types`: (type, unit) per value; `period`: (type, unit, value).
    pub fn new(sample_types: &[(&str, &str)], period: (&str, &str, i64)) -> Self {
        let mut b = Self {
            profile: Profile::default(),
            strings: HashMap::new(),
            locations: HashMap::new(),
            named_locations: HashMap::new(),
            functions: HashMap::new(),
            mappings: Vec::new(),
        };
        b.intern("");
        b.profile.sample_type = sample_types
            .iter()
            .map(|(t, u)| ValueType {
                r#type: b.intern(t),
                unit: b.intern(u),
            })
            .collect();
        b.profile.period_type = Some(ValueType {
            r#type: b.intern(period.0),
            unit: b.intern(period.1),
        });
        b.profile.period = period.2;
        b.profile.time_nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        if let Ok(exe) = crate::unwind::init() {
            b.mappings = exe.mappings.clone();
        }
        for (i, m) in b.mappings.clone().iter().enumerate() {
            let filename = b.intern(&m.path);
            let build_id = b.intern(&m.build_id);
            b.profile.mapping.push(Mapping {
                id: i as u64 + 1,
                memory_start: m.start,
                memory_limit: m.limit,
                file_offset: m.file_offset,
                filename,
                build_id,
                // Names come with the profile, file:line does not: left false, these flags
                // tell pprof to symbolize the mapping itself when it finds the binary and its
                // debug file (PPROF_BINARY_PATH), and to keep these names when it does not.
                has_functions: false,
                ..Mapping::default()
            });
        }
        b
    }

    pub fn intern(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    /// The sample type tools show unless told otherwise (a string, not an index: the field
    /// holds the type's name in the string table).
    pub fn default_sample_type(&mut self, name: &str) {
        self.profile.default_sample_type = self.intern(name);
    }

    pub fn duration(&mut self, d: Duration) {
        self.profile.duration_nanos = d.as_nanos() as i64;
    }

    pub fn comment(&mut self, text: &str) {
        let i = self.intern(text);
        self.profile.comment.push(i);
    }

    /// One sample: a stack (innermost first), its values, and string labels.
    pub fn sample(&mut self, stack: &[u64], values: Vec<i64>, labels: &[(&str, &str)]) {
        let location_id = stack.iter().map(|&a| self.location(a)).collect();
        let label = self.labels(labels);
        self.profile.sample.push(Sample {
            location_id,
            value: values,
            label,
        });
    }

    /// A sample whose frames (innermost first) are only names: no address, no mapping.
    pub fn named_sample(&mut self, frames: &[&str], value: i64, labels: &[(&str, &str)]) {
        let location_id = frames.iter().map(|f| self.named_location(f)).collect();
        let label = self.labels(labels);
        self.profile.sample.push(Sample {
            location_id,
            value: vec![value],
            label,
        });
    }

    fn named_location(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.named_locations.get(name) {
            return id;
        }
        let function_id = self.function(name, name, "");
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id: 0,
            address: 0,
            line: vec![Line {
                function_id,
                line: 0,
            }],
        });
        self.named_locations.insert(name.to_owned(), id);
        id
    }

    fn labels(&mut self, labels: &[(&str, &str)]) -> Vec<Label> {
        labels
            .iter()
            .map(|(k, v)| Label {
                key: self.intern(k),
                str: self.intern(v),
                num: 0,
            })
            .collect()
    }

    fn location(&mut self, addr: u64) -> u64 {
        if let Some(&id) = self.locations.get(&addr) {
            return id;
        }
        let mapping_id = self
            .mappings
            .iter()
            .position(|m| (m.start..m.limit).contains(&addr))
            .map_or(0, |i| i as u64 + 1);
        let line = symbolize(addr)
            .into_iter()
            .map(|s| Line {
                function_id: self.function(&s.name, &s.system_name, ""),
                line: 0,
            })
            .collect();
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id,
            address: addr,
            line,
        });
        self.locations.insert(addr, id);
        id
    }

    fn function(&mut self, name: &str, system_name: &str, file: &str) -> u64 {
        let key = (name.to_owned(), file.to_owned());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let (name_i, system_i, file_i) = (
            self.intern(name),
            self.intern(system_name),
            self.intern(file),
        );
        self.profile.function.push(Function {
            id,
            name: name_i,
            system_name: system_i,
            filename: file_i,
        });
        self.functions.insert(key, id);
        id
    }

    pub fn build(mut self) -> Profile {
        let lines = self
            .profile
            .location
            .iter()
            .any(|l| l.line.iter().any(|x| x.line != 0));
        for m in &mut self.profile.mapping {
            m.has_filenames = lines;
            m.has_line_numbers = lines;
        }
        self.profile
    }
}
