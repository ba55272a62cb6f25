//! deploy/ as Kubernetes gets it: each overlay rendered by `kubectl kustomize` validates
//! against the Kubernetes 1.37 schemas (`kubernetes-validate --strict`), and the rendered
//! objects keep what docs/kubernetes.md promises: the restricted Pod Security Standard by
//! construction, probes on the right paths and ports, the native preStop sleep, the drain
//! arithmetic, the debug port off the Service, and the profiling overlay's annotations and
//! NetworkPolicy. Needs the tools `make k8s-check` installs (TOOLS_BIN); ignored otherwise.
mod common;

use std::collections::BTreeSet;

use common::manifests::{self, Rendered, container, flag_seconds, pod_spec};
use common::relabel::{self, Labels};
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
    // The debug port: open to the profiler's namespace only here, to no one in the base.
    let debug_rules = |r: &Rendered| -> Vec<Value> {
        r.object("NetworkPolicy")["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rule| {
                rule["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"] == "debug" || p["port"] == debug.as_str())
            })
            .cloned()
            .collect()
    };
    let rules = debug_rules(&r);
    assert_eq!(rules.len(), 1, "one rule for the debug port: {rules:?}");
    assert_eq!(
        rules[0]["from"],
        serde_json::json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "profiling"}}}]),
        "debug only from the profiler's namespace"
    );
    let base = render("base");
    assert!(
        debug_rules(&base).is_empty(),
        "the base fences the debug port"
    );
    let open = &base.object("NetworkPolicy")["spec"];
    assert_eq!(open["policyTypes"], serde_json::json!(["Ingress"]));
    assert!(
        open["ingress"][0]["from"].is_null() && open["ingress"][0]["ports"][0]["port"] == "http",
        "the service port open to every client: {open}"
    );
    let base_pod = &base.object("Deployment")["spec"]["template"]["metadata"];
    assert!(base_pod.get("annotations").is_none_or(Value::is_null));
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn replicas_spread_over_nodes_and_scale_within_the_disruption_budget() {
    let r = render("base");
    let deployment = r.object("Deployment");
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "the HPA owns the replica count; kubectl apply would reset a fixed one"
    );
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let spread = pod_spec(&r)["topologySpreadConstraints"]
        .as_array()
        .expect("topologySpreadConstraints");
    for (key, when) in [
        ("kubernetes.io/hostname", "DoNotSchedule"),
        ("topology.kubernetes.io/zone", "ScheduleAnyway"),
    ] {
        let c = spread
            .iter()
            .find(|c| c["topologyKey"] == key)
            .unwrap_or_else(|| panic!("no spread over {key}"));
        assert_eq!(c["maxSkew"], 1, "{key}");
        assert_eq!(c["whenUnsatisfiable"], when, "{key}");
        for (k, v) in c["labelSelector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "{key}: the selector matches the pods");
        }
    }
    let hpa = r.object("HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(
        (target["kind"].as_str(), target["name"].as_str()),
        (Some("Deployment"), deployment["metadata"]["name"].as_str())
    );
    let min = hpa["spec"]["minReplicas"].as_u64().unwrap();
    let max = hpa["spec"]["maxReplicas"].as_u64().unwrap();
    assert!(min >= 2 && max > min, "{min}..{max}");
    let cpu = hpa["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["resource"]["name"] == "cpu")
        .expect("scales on CPU");
    assert_eq!(cpu["resource"]["target"]["type"], "Utilization");
    // The disruption budget leaves a replica serving at the HPA's lowest count.
    let pdb = &r.object("PodDisruptionBudget")["spec"];
    let serving = match (pdb["maxUnavailable"].as_u64(), pdb["minAvailable"].as_u64()) {
        (Some(unavailable), None) => min.saturating_sub(unavailable),
        (None, Some(available)) => available.min(min),
        other => panic!("PDB {other:?}"),
    };
    assert!(
        serving >= 1 && serving < min,
        "PDB at {min} replicas: {serving} keep serving, one may go"
    );
}

/// What a profiler keeps of a running pod of `r`'s Deployment after `stages` of relabel rules
/// (Alloy chains discovery.relabel blocks), as it then scrapes them: meta labels gone,
/// duplicates one (Parca and Alloy key targets by their labels).
fn scraped(r: &Rendered, stages: &[&[relabel::Rule]]) -> BTreeSet<Labels> {
    let template = &r.object("Deployment")["spec"]["template"];
    relabel::discover(template, "shop", "httpserver-7d9f-abcde", "10.1.2.3")
        .into_iter()
        .filter_map(|t| {
            stages
                .iter()
                .try_fold(t, |t, rules| relabel::apply(rules, t))
        })
        .map(|t| {
            t.into_iter()
                .filter(|(k, _)| !k.starts_with("__meta_"))
                .collect()
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: make k8s-check"]
fn the_profilers_cluster_rules_pick_the_annotated_pods_debug_port() {
    let profiling = render("profiling");
    let base = render("base");
    let debug = manifests::container_port(container(&profiling), "debug");
    let want = format!("10.1.2.3:{debug}");
    let address = |t: &Labels| t["__address__"].clone();

    let parca = common::yaml_documents(read("deploy/profilers/parca.yaml").as_bytes()).unwrap();
    for (job, rules) in relabel::parca_rules(&parca[0]) {
        let kept = scraped(&profiling, &[&rules]);
        assert_eq!(
            kept.iter().map(address).collect::<Vec<_>>(),
            std::slice::from_ref(&want),
            "Parca job {job}: {kept:?}"
        );
        assert!(
            scraped(&base, &[&rules]).is_empty(),
            "Parca job {job}: the base has no annotation"
        );
        // Parca sets each default profile's own path before relabelling: nothing may replace it.
        assert!(
            rules.iter().all(|r| r.target_label != "__profile_path__"),
            "{job}"
        );
    }

    let alloy = relabel::alloy_relabels(&read("deploy/profilers/alloy.alloy"));
    let (_, pods) = &alloy["pods"];
    for kind in ["cpu", "memory", "goroutine", "block", "mutex"] {
        let (from, rules) = alloy
            .get(kind)
            .unwrap_or_else(|| panic!("alloy: no discovery.relabel \"{kind}\""));
        assert_eq!(
            from.as_deref(),
            Some("pods"),
            "{kind} takes discovery.relabel.pods"
        );
        let kept = scraped(&profiling, &[pods, rules]);
        assert_eq!(
            kept.iter().map(address).collect::<Vec<_>>(),
            std::slice::from_ref(&want),
            "Alloy {kind}: {kept:?}"
        );
        let t = kept.first().unwrap();
        assert!(
            t.get("__profile_path__").is_none(),
            "Alloy {kind}: its default path"
        );
        assert_eq!(t["pod"], "httpserver-7d9f-abcde", "Alloy {kind}");
        assert!(
            scraped(&base, &[pods, rules]).is_empty(),
            "Alloy {kind}: the base has no annotation"
        );
    }
    // Alloy's pyroscope.scrape names the service from this annotation.
    let annotations =
        &profiling.object("Deployment")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["pyroscope.io/service_name"], "httpserver");
}
