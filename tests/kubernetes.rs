//! deploy/ as Kubernetes gets it: each overlay rendered by `kubectl kustomize` validates
//! against the Kubernetes 1.37 schemas (`kubernetes-validate --strict`), and the rendered
//! objects keep what docs/kubernetes.md promises: the restricted Pod Security Standard by
//! construction, probes on the right paths and ports, the native preStop sleep, the drain
//! arithmetic, the debug port off the Service, and the profiling overlay's annotations and
//! NetworkPolicy. Needs the tools `make k8s-check` installs (TOOLS_BIN); ignored otherwise.
mod common;

use common::manifests::{self, Rendered, container, flag_seconds, pod_spec};
use serde_json::Value;

fn render(overlay: &str) -> Rendered {
    manifests::render(overlay).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn every_overlay_validates_against_the_kubernetes_schemas() {
    for overlay in ["base", "profiling"] {
        let report = manifests::validate(overlay).unwrap_or_else(|e| panic!("{e}"));
        println!("{report}");
    }
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn the_pod_meets_the_restricted_pod_security_standard() {
    for overlay in ["base", "profiling"] {
        let r = render(overlay);
        let pod = pod_spec(&r);
        let sc = &pod["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{overlay}");
        assert_eq!(sc["runAsUser"], 65532, "{overlay}: the image's uid");
        assert_eq!(sc["runAsGroup"], 65532, "{overlay}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{overlay}");
        assert_eq!(pod["automountServiceAccountToken"], false, "{overlay}");
        assert!(pod.get("volumes").is_none(), "{overlay}: no volume at all");
        let sa = r.object("ServiceAccount");
        assert_eq!(sa["automountServiceAccountToken"], false);
        for c in pod["containers"].as_array().unwrap() {
            let csc = &c["securityContext"];
            assert_eq!(csc["allowPrivilegeEscalation"], false, "{overlay}");
            assert_eq!(csc["readOnlyRootFilesystem"], true, "{overlay}");
            assert_eq!(
                csc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{overlay}"
            );
            assert!(csc["capabilities"].get("add").is_none(), "{overlay}");
            assert!(c.get("volumeMounts").is_none(), "{overlay}");
            for what in ["requests", "limits"] {
                for r in ["cpu", "memory", "ephemeral-storage"] {
                    assert!(
                        c["resources"][what].get(r).is_some(),
                        "{overlay}: {what}.{r} missing"
                    );
                }
            }
        }
    }
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn probes_use_healthz_and_readyz_on_the_service_port_within_the_header_deadline() {
    let r = render("base");
    let c = container(&r);
    let header_read = flag_seconds(c, "--header-read-timeout").unwrap_or(10);
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let p = &c[probe];
        assert_eq!(p["httpGet"]["path"], path, "{probe}");
        assert_eq!(p["httpGet"]["port"], "http", "{probe}");
        let timeout = p["timeoutSeconds"].as_u64().unwrap_or(1);
        assert!(timeout < header_read, "{probe}: timeout {timeout} s");
    }
    let http = manifests::container_port(c, "http");
    let env_port = c["env"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["name"] == "MY_SERVICE_PORT"))
        .and_then(|v| v["value"].as_str())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(
        env_port,
        Some(http),
        "the service listens on the port named http"
    );
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn the_drain_fits_the_termination_grace_period() {
    let r = render("base");
    let pod = pod_spec(&r);
    let c = container(&r);
    let pre_stop = &c["lifecycle"]["preStop"];
    assert!(
        pre_stop.get("exec").is_none(),
        "no shell in the image: the native sleep"
    );
    let sleep = pre_stop["sleep"]["seconds"]
        .as_u64()
        .expect("preStop sleep");
    let drain = flag_seconds(c, "--drain-delay").expect("--drain-delay");
    let grace = flag_seconds(c, "--shutdown-grace").expect("--shutdown-grace");
    let period = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(sleep > 0, "endpoints need time to drop the pod");
    assert!(
        sleep + drain + grace < period,
        "preStop {sleep} + drain {drain} + grace {grace} must stay below {period}"
    );
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn the_debug_port_is_its_own_and_not_in_the_service() {
    for overlay in ["base", "profiling"] {
        let r = render(overlay);
        let c = container(&r);
        let debug = manifests::container_port(c, "debug");
        let addr = manifests::flag(c, "--debug-addr").expect("--debug-addr");
        assert!(
            addr.ends_with(&format!(":{debug}")),
            "{addr} vs port {debug}"
        );
        let svc = r.object("Service");
        for p in svc["spec"]["ports"].as_array().unwrap() {
            assert_ne!(p["targetPort"], "debug", "{overlay}");
            assert_ne!(p["targetPort"], debug, "{overlay}");
        }
    }
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn the_profiling_overlay_is_discoverable_and_fenced() {
    let r = render("profiling");
    let pod = &r.object("Deployment")["spec"]["template"];
    let a = &pod["metadata"]["annotations"];
    let debug = manifests::container_port(container(&r), "debug").to_string();
    assert_eq!(a["parca.dev/scrape"], "true");
    assert_eq!(a["parca.dev/port"], debug.as_str());
    assert_eq!(a["parca.dev/path"], "/debug/pprof");
    assert_eq!(a["pyroscope.io/service_name"], "httpserver");
    for t in ["cpu", "memory", "goroutine", "block", "mutex"] {
        assert_eq!(a[format!("profiles.grafana.com/{t}.scrape")], "true", "{t}");
        assert_eq!(
            a[format!("profiles.grafana.com/{t}.port_name")],
            "debug",
            "{t}"
        );
    }
    let np = r.object("NetworkPolicy");
    let rules = np["spec"]["ingress"].as_array().unwrap();
    let debug_rule = rules
        .iter()
        .find(|rule| {
            rule["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == "debug")
        })
        .expect("a rule for the debug port");
    assert!(
        debug_rule["from"].as_array().is_some_and(|f| !f.is_empty()),
        "debug only from the profiler"
    );
    // The base has neither.
    let base = render("base");
    assert!(base.objects.iter().all(|o| o["kind"] != "NetworkPolicy"));
    let base_pod = &base.object("Deployment")["spec"]["template"]["metadata"];
    assert!(base_pod.get("annotations").is_none_or(Value::is_null));
}
