//! What a profiler in the cluster does with a pod before it scrapes it: Kubernetes service
//! discovery (role "pod") turns the pod into one target per container port, labelled as
//! Prometheus documents (`__meta_kubernetes_pod_*`), then the scrape config's relabel rules keep,
//! drop and rewrite them. Parca uses Prometheus's relabelling, Alloy the same rules in its own
//! syntax; both anchor each regex and join source labels with ";". Here for the rules in
//! deploy/profilers, read from their files (Parca's YAML, Alloy's `rule` blocks).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

pub type Labels = BTreeMap<String, String>;

/// One relabel rule, with Prometheus's defaults filled in.
#[derive(Debug, Clone)]
pub struct Rule {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: String,
    pub target_label: String,
    pub replacement: String,
    pub action: String,
}

impl Rule {
    fn from_fields(fields: &BTreeMap<String, Value>) -> Rule {
        let text = |k: &str, default: &str| {
            fields.get(k).map_or(default.to_owned(), |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        Rule {
            source_labels: fields
                .get("source_labels")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default(),
            separator: text("separator", ";"),
            regex: text("regex", "(.*)"),
            target_label: text("target_label", ""),
            replacement: text("replacement", "$1"),
            action: text("action", "replace"),
        }
    }
}

/// Prometheus's label name sanitizing: anything but [a-zA-Z0-9_] becomes "_".
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The targets Kubernetes SD (role pod) makes of a running pod of this template at `pod_ip`.
pub fn discover(template: &Value, namespace: &str, pod_name: &str, pod_ip: &str) -> Vec<Labels> {
    let mut common = Labels::new();
    common.insert("__meta_kubernetes_namespace".into(), namespace.into());
    common.insert("__meta_kubernetes_pod_name".into(), pod_name.into());
    common.insert("__meta_kubernetes_pod_ip".into(), pod_ip.into());
    common.insert("__meta_kubernetes_pod_phase".into(), "Running".into());
    common.insert("__meta_kubernetes_pod_ready".into(), "true".into());
    for (kind, map) in [
        ("label", &template["metadata"]["labels"]),
        ("annotation", &template["metadata"]["annotations"]),
    ] {
        for (k, v) in map.as_object().into_iter().flatten() {
            let name = sanitize(k);
            common.insert(
                format!("__meta_kubernetes_pod_{kind}_{name}"),
                v.as_str().unwrap().into(),
            );
            common.insert(
                format!("__meta_kubernetes_pod_{kind}present_{name}"),
                "true".into(),
            );
        }
    }
    let mut targets = Vec::new();
    for c in template["spec"]["containers"].as_array().unwrap() {
        for p in c["ports"].as_array().into_iter().flatten() {
            let mut t = common.clone();
            let number = p["containerPort"].as_u64().unwrap();
            t.insert("__address__".into(), format!("{pod_ip}:{number}"));
            t.insert(
                "__meta_kubernetes_pod_container_name".into(),
                c["name"].as_str().unwrap().into(),
            );
            t.insert(
                "__meta_kubernetes_pod_container_port_name".into(),
                p["name"].as_str().unwrap_or("").into(),
            );
            t.insert(
                "__meta_kubernetes_pod_container_port_number".into(),
                number.to_string(),
            );
            t.insert(
                "__meta_kubernetes_pod_container_port_protocol".into(),
                p["protocol"].as_str().unwrap_or("TCP").into(),
            );
            targets.push(t);
        }
    }
    targets
}

/// Applies `rules` to `target` in order: None if a rule drops it.
pub fn apply(rules: &[Rule], mut target: Labels) -> Option<Labels> {
    for r in rules {
        let re =
            Regex::new(&format!("^(?:{})$", r.regex)).unwrap_or_else(|e| panic!("rule {r:?}: {e}"));
        let value = r
            .source_labels
            .iter()
            .map(|l| target.get(l).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(&r.separator);
        let expand = |caps: &regex::Captures, template: &str| {
            let mut out = String::new();
            caps.expand(template, &mut out);
            out
        };
        match r.action.as_str() {
            "keep" if !re.is_match(&value) => return None,
            "drop" if re.is_match(&value) => return None,
            "keep" | "drop" => {}
            "keepequal" if target.get(&r.target_label).cloned().unwrap_or_default() != value => {
                return None;
            }
            "dropequal" if target.get(&r.target_label).cloned().unwrap_or_default() == value => {
                return None;
            }
            "keepequal" | "dropequal" => {}
            "replace" => {
                if let Some(caps) = re.captures(&value) {
                    let name = expand(&caps, &r.target_label);
                    let new = expand(&caps, &r.replacement);
                    if new.is_empty() {
                        target.remove(&name);
                    } else {
                        target.insert(name, new);
                    }
                }
            }
            "labelmap" => {
                let mapped: Vec<(String, String)> = target
                    .iter()
                    .filter_map(|(k, v)| {
                        re.captures(k)
                            .map(|caps| (expand(&caps, &r.replacement), v.clone()))
                    })
                    .collect();
                target.extend(mapped);
            }
            other => panic!("relabel action {other} is not modelled here"),
        }
    }
    Some(target)
}

/// The relabel_configs of each scrape config in a Parca (Prometheus-style) YAML document.
pub fn parca_rules(config: &Value) -> Vec<(String, Vec<Rule>)> {
    config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|job| {
            let rules = job["relabel_configs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    Rule::from_fields(
                        &r.as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .collect();
            (job["job_name"].as_str().unwrap().to_owned(), rules)
        })
        .collect()
}

/// The `rule` blocks of each `discovery.relabel "NAME"` block of an Alloy configuration, and the
/// block its `targets` come from (`discovery.relabel.OTHER.output` → OTHER). Attribute values
/// are strings ("...", with \\ and \" escapes) or lists of strings, as in deploy/profilers.
pub fn alloy_relabels(text: &str) -> BTreeMap<String, (Option<String>, Vec<Rule>)> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("discovery.relabel \"")
            .and_then(|r| r.strip_suffix("\" {"))
        else {
            continue;
        };
        let (mut from, mut rules) = (None, Vec::new());
        let mut rule: Option<BTreeMap<String, Value>> = None;
        for line in lines.by_ref() {
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            if line == "rule {" {
                rule = Some(BTreeMap::new());
            } else if line == "}" {
                match rule.take() {
                    Some(fields) => rules.push(Rule::from_fields(&fields)),
                    None => break,
                }
            } else {
                let (key, value) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("alloy: cannot read {line:?}"));
                let value = alloy_value(value.trim());
                match rule.as_mut() {
                    Some(fields) => {
                        fields.insert(key.trim().to_owned(), value);
                    }
                    None if key.trim() == "targets" => {
                        from = value
                            .as_str()
                            .and_then(|v| v.strip_prefix("discovery.relabel."))
                            .and_then(|v| v.strip_suffix(".output"))
                            .map(str::to_owned);
                    }
                    None => {}
                }
            }
        }
        out.insert(name.to_owned(), (from, rules));
    }
    out
}

fn alloy_value(text: &str) -> Value {
    if let Some(list) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Value::Array(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(alloy_value)
                .collect(),
        );
    }
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(s) => Value::String(s.replace("\\\"", "\"").replace("\\\\", "\\")),
        // An expression (a reference to another component's export).
        None => Value::String(text.to_owned()),
    }
}
