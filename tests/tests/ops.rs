//! The alerting starter kit in `ops/`: the Prometheus rules and the
//! Grafana dashboard parse, and every metric they name is served by a
//! real node's `/metrics`.
//!
//! No YAML crate is in the workspace, so the rules file is checked by a
//! strict line reading of the subset it uses (block mappings and
//! sequences, two-space indents, plain or quoted scalars), which is enough
//! to catch a broken indent or a missing key.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use meridian_tests::Datastore;
use support::{http_get, parse_prometheus, SYNC_LIMIT};

fn ops(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// One rule of the rules file.
#[derive(Debug, Default)]
struct Rule {
    alert: String,
    expr: String,
    keys: BTreeSet<String>,
}

/// Reads the rules file: checks its structure line by line and returns
/// its rules.
fn read_rules(text: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = format!("line {}: {raw:?}", n + 1);
        assert!(!raw.contains('\t'), "tab in {at}");
        assert_eq!(raw.trim_end(), raw, "trailing space in {at}");
        let body = raw.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - body.len();
        assert_eq!(indent % 2, 0, "odd indent in {at}");
        let mut item = body;
        let new_item = body.starts_with("- ");
        if new_item {
            item = &body[2..];
            indent += 2;
        }
        let (key, value) = item
            .split_once(':')
            .unwrap_or_else(|| panic!("not `key: value` in {at}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad key in {at}"
        );
        let value = value.trim();
        if value.starts_with('"') {
            assert!(
                value.len() >= 2 && value.ends_with('"'),
                "unclosed quote in {at}"
            );
        }
        while path.last().is_some_and(|(i, _)| *i >= indent) {
            path.pop();
        }
        let parents: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
        if new_item && parents == ["groups", "rules"] {
            rules.push(Rule::default());
        }
        if parents == ["groups", "rules"] {
            let rule = rules
                .last_mut()
                .unwrap_or_else(|| panic!("rule key outside a rule: {at}"));
            assert!(rule.keys.insert(key.to_owned()), "repeated key in {at}");
            match key {
                "alert" => rule.alert = value.to_owned(),
                "expr" => rule.expr = value.to_owned(),
                _ => {}
            }
        }
        if value.is_empty() {
            path.push((indent, key.to_owned()));
        }
    }
    rules
}

/// Every `meridian_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("meridian_") {
        let start = i + off;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn alert_rules_and_dashboard_parse_and_name_real_metrics() {
    let rules_text = ops("prometheus/meridian-alerts.yml");
    let rules = read_rules(&rules_text);
    assert!(rules.len() >= 4, "{rules:?}");
    for r in &rules {
        assert!(!r.alert.is_empty() && !r.expr.is_empty(), "{r:?}");
        for key in ["labels", "annotations"] {
            assert!(r.keys.contains(key), "{}: no {key}", r.alert);
        }
        let open = r.expr.matches('(').count();
        assert_eq!(
            open,
            r.expr.matches(')').count(),
            "{}: parentheses",
            r.alert
        );
    }
    let alerts: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    for wanted in ["LagP99High", "LinkDown", "RepeatedFullSyncs"] {
        assert!(alerts.iter().any(|a| a.contains(wanted)), "{alerts:?}");
    }
    assert!(
        rules.iter().any(|r| r.keys.contains("for")),
        "no rule waits N minutes"
    );

    let dash_text = ops("grafana/meridian-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&dash_text).expect("dashboard JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    let mut exprs = String::new();
    for p in panels {
        assert!(p["title"].is_string() && p["gridPos"].is_object(), "{p}");
        for t in p["targets"].as_array().expect("targets") {
            exprs.push_str(t["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }

    // A real scrape of a primary and a secondary.
    let ds = Datastore::start();
    ds.wait_in_sync(SYNC_LIMIT);
    let mut served = BTreeSet::new();
    for r in &ds.layout().regions[..2] {
        let (_, body) = http_get(r.metrics, "/metrics");
        served.extend(parse_prometheus(&body).into_iter().map(|s| s.name));
    }
    let rule_exprs: String = rules.iter().map(|r| format!("{}\n", r.expr)).collect();
    for (what, text) in [("alert rules", &rule_exprs), ("dashboard", &exprs)] {
        let names = metric_names(text);
        assert!(names.len() >= 4, "{what}: {names:?}");
        for name in &names {
            assert!(
                served.contains(name),
                "{what} names {name}, which /metrics does not serve; served: {served:?}"
            );
        }
    }
    // The dashboard covers every family but the histogram's parts.
    let dash_names = metric_names(&exprs);
    for name in &served {
        let family = name.strip_suffix("_sum").or(name.strip_suffix("_count"));
        let covered = dash_names.contains(name) || family.is_some();
        assert!(covered, "dashboard has no panel for {name}");
    }
}

#[test]
fn rule_reader_catches_broken_files() {
    let good = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        labels:\n          severity: x\n        annotations:\n          summary: \"s\"\n";
    let rules = read_rules(good);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].expr, "up == 0");
    for bad in [
        good.replace("        expr", "       expr"),
        good.replace("summary: \"s\"", "summary: \"s"),
        good.replace("alert: A", "alert A"),
    ] {
        assert!(
            std::panic::catch_unwind(|| read_rules(&bad)).is_err(),
            "{bad}"
        );
    }
}
