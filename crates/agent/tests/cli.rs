//! The binary's validation mode: `rvs-agent -t -f FILE`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn conf(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name).display().to_string()
}

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvs-agent")).args(args).env("RVS_AGENT_LOG", "off").output().unwrap()
}

#[test]
fn valid_files_pass_and_broken_ones_fail_with_file_and_line() {
    let ok = agent(&["-t", "-f", &conf("dpvs-fnat-master.conf")]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stderr).contains("configuration OK"));

    let bad = agent(&["-t", "-f", &conf("broken.conf")]);
    assert_eq!(bad.status.code(), Some(5), "keepalived's KEEPALIVED_EXIT_CONFIG_TEST");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("broken.conf:41: error: lb_kind DR is not supported by rvs yet (FullNAT only): use lb_kind FNAT"),
        "{err}"
    );
    assert!(err.contains("14 error(s); refusing the configuration"), "{err}");

    // Refuses to start, not only to validate.
    let run = agent(&["-f", &conf("broken.conf")]);
    assert_eq!(run.status.code(), Some(4), "keepalived's KEEPALIVED_EXIT_CONFIG");
    let missing = agent(&["-t", "-f", "/nonexistent/keepalived.conf"]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read configuration /nonexistent/keepalived.conf"));
}

/// Keywords accepted and not honoured are warnings naming file:line under `-t`, and
/// errors under `--strict`; valid keepalived that rvs lacks is refused as such.
#[test]
fn ignored_keywords_are_listed_and_strict_refuses_them() {
    let dir = std::env::temp_dir().join(format!("rvs-agent-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k.conf");
    std::fs::write(
        &f,
        "global_defs {\n notification_email {\n  ops@example.com\n }\n}\n\
         vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  10.0.0.9\n }\n}\n",
    )
    .unwrap();
    let f = f.display().to_string();
    let t = agent(&["-t", "-f", &f]);
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(t.status.success(), "{err}");
    assert!(err.contains("k.conf:2: warning: 'notification_email' is accepted and not honoured"), "{err}");
    let strict = agent(&["-t", "--strict", "-f", &f]);
    assert_eq!(strict.status.code(), Some(5));
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("k.conf:2: error: 'notification_email'"), "{err}");
    assert!(err.contains("--strict: warnings are errors"), "{err}");

    std::fs::write(
        dir.join("u.conf"),
        "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n use_vmac\n track_file {\n  f\n }\n}\n",
    )
    .unwrap();
    let u = agent(&["-t", "-f", &dir.join("u.conf").display().to_string()]);
    assert_eq!(u.status.code(), Some(5));
    let err = String::from_utf8_lossy(&u.stderr);
    assert!(
        err.contains(
            "u.conf:5: error: 'track_file' (in vrrp_instance) is valid keepalived that rvs does not support yet"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lenient_downgrades_unknown_keywords() {
    let dir = std::env::temp_dir().join(format!("rvs-agent-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k.conf");
    std::fs::write(
        &f,
        "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n shiny_new_option 1\n virtual_ipaddress {\n  10.0.0.9\n }\n}\n",
    )
    .unwrap();
    let f = f.display().to_string();
    let strict = agent(&["-t", "-f", &f]);
    assert_eq!(strict.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("k.conf:4: error: unknown keyword 'shiny_new_option'"));
    let lenient = agent(&["-t", "--lenient", "-f", &f]);
    assert!(lenient.status.success());
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("k.conf:4: warning: unknown keyword 'shiny_new_option'"));
    let json = agent(&["-t", "--lenient", "--json", "-f", &f]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["severity"], "Warning");
    assert!(v[0]["loc"].as_str().unwrap().ends_with("k.conf:4"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pair_check_reports_weights_that_cannot_fail_over() {
    let dir = std::env::temp_dir().join(format!("rvs-agent-pair-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = |prio: u32| {
        format!(
            "vrrp_script chk {{\n script \"/bin/true\"\n weight -20\n}}\n\
             vrrp_instance V {{\n interface eth0\n virtual_router_id 9\n priority {prio}\n\
             track_script {{\n  chk\n }}\n virtual_ipaddress {{\n  10.0.0.9\n }}\n}}\n"
        )
    };
    std::fs::write(dir.join("a.conf"), node(150)).unwrap();
    std::fs::write(dir.join("b.conf"), node(100)).unwrap();
    std::fs::write(dir.join("c.conf"), node(140)).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    let out = agent(&["-t", "-f", &p("a.conf"), "--peer-config", &p("b.conf")]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weight -20 can never fail over VRID 9"));
    assert!(agent(&["-t", "-f", &p("a.conf"), "--peer-config", &p("c.conf")]).status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_is_not_there_yet() {
    let out = agent(&["status"]);
    assert!(!out.status.success());
}
