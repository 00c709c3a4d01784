//! The keepalived.conf corpus in tests/corpus: one small file per construct, written
//! from keepalived.conf(5) and DPVS's documentation. Each file's first line says what
//! `rvs-agent -t` must make of it:
//! - `# expect: ok`: no error (the file runs);
//! - `# expect: warning TEXT`: no error, a warning containing TEXT (a keyword accepted
//!   and not honoured), and `--strict` refuses the file on it;
//! - `# expect: error TEXT`: refused with an error containing TEXT (valid keepalived rvs
//!   does not support yet, or a mistake).
//!
//! Files run with config id `lb1` (for `@` lines); `--strict` fails exactly the files
//! with a warning. The binary's exit status is keepalived's: 0, or 5 on errors.

use rvs_agent::keepalived::{load, Loaded, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    files
}

enum Expect {
    Ok,
    Warning(String),
    Error(String),
}

fn expectation(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).expect("read");
    let first = text.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("# expect: ").unwrap_or_else(|| panic!("{}: no '# expect:' line", path.display()));
    match rest.split_once(' ') {
        None if rest == "ok" => Expect::Ok,
        Some(("warning", t)) => Expect::Warning(t.to_string()),
        Some(("error", t)) => Expect::Error(t.to_string()),
        _ => panic!("{}: bad expectation '{rest}'", path.display()),
    }
}

fn opts(strict: bool) -> Options {
    Options { strict, config_id: Some("lb1".into()), ..Options::default() }
}

fn messages(l: &Loaded, errors: bool) -> Vec<String> {
    l.diagnostics.iter().filter(|d| d.is_error() == errors).map(ToString::to_string).collect()
}

#[test]
fn every_file_gets_its_expected_verdict() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus is there: {files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let l = load(f, opts(false));
        let (errors, warnings) = (messages(&l, true), messages(&l, false));
        match expectation(f) {
            Expect::Ok => {
                assert!(errors.is_empty(), "{name}: {errors:#?}");
                // The only warning a clean file may draw: FullNAT without local addresses.
                let other: Vec<_> = warnings.iter().filter(|w| !w.contains("no laddr_group_name")).collect();
                assert!(other.is_empty(), "{name}: {other:#?}");
            }
            Expect::Warning(t) => {
                assert!(errors.is_empty(), "{name}: {errors:#?}");
                assert!(warnings.iter().any(|w| w.contains(&t)), "{name}: no warning '{t}' in {warnings:#?}");
                assert!(
                    l.config.ignored.iter().any(|(loc, _)| loc.file.ends_with(&name)),
                    "{name}: recorded as ignored with its file"
                );
            }
            Expect::Error(t) => assert!(errors.iter().any(|e| e.contains(&t)), "{name}: no error '{t}' in {errors:#?}"),
        }
        let strict = load(f, opts(true));
        assert_eq!(strict.has_errors(), !l.diagnostics.is_empty(), "{name}: --strict fails exactly on a diagnostic");
    }
}

#[test]
fn the_binary_exits_as_keepalived_does() {
    for f in corpus() {
        let out = Command::new(env!("CARGO_BIN_EXE_rvs-agent"))
            .args(["-t", "-i", "lb1", "-f"])
            .arg(&f)
            .env("RVS_LOG", "off")
            .output()
            .expect("rvs-agent");
        let want = if matches!(expectation(&f), Expect::Error(_)) { 5 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// What the wired keywords become in the configuration the agent runs.
#[test]
fn wired_keywords_reach_the_configuration() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let l = load(&dir.join("09-thresholds-and-hash-flags.conf"), opts(false));
    let v = &l.config.virtual_servers[0];
    assert_eq!((v.real_servers[0].upper, v.real_servers[0].lower), (1000, 800));
    assert_eq!(v.sched_flags, Some(rvs_agent::dataplane::SchedFlags { port: true, fallback: true }));

    let l = load(&dir.join("55-lvs-timeouts-and-startup-delay.conf"), opts(false));
    let g = &l.config.global_defs;
    assert_eq!(g.lvs_timeouts, rvs_agent::dataplane::LvsTimeouts { tcp: 7200, tcpfin: 60, udp: 30 });
    assert_eq!(g.vrrp_startup_delay, Some(2.5));

    let l = load(&dir.join("07-vs-lowercase-protocol.conf"), opts(false));
    assert_eq!(l.config.virtual_servers[0].protocol, rvs_agent::dataplane::Proto::Udp);

    let l = load(&dir.join("02-vrrp-v6-auto-v3.conf"), opts(false));
    assert_eq!(l.config.vrrp_instances[0].version, rvs_agent::vrrp::packet::Version::V3);

    let l = load(&dir.join("05-higher-prio-send-advert.conf"), opts(false));
    assert!(l.config.vrrp_instances[0].higher_prio_send_advert);
    assert!(l.config.global_defs.vrrp_higher_prio_send_advert);

    let l = load(&dir.join("08-http-get-virtualhost.conf"), opts(false));
    let rs = &l.config.virtual_servers[0].real_servers[0];
    match &rs.checks[0].kind {
        rvs_agent::keepalived::config::CheckKind::Http { urls, virtualhost, .. } => {
            assert_eq!(virtualhost.as_deref(), Some("www.example.com"), "the virtual server's virtualhost");
            assert_eq!(urls[0].virtualhost.as_deref(), Some("health.example.com"), "a url's own");
            assert_eq!(urls[1].virtualhost, None);
        }
        k => panic!("{k:?}"),
    }

    let l = load(&dir.join("12-conditionals-and-params.conf"), opts(false));
    let i = &l.config.vrrp_instances[0];
    assert_eq!((i.priority, i.interface.as_str()), (150, "eth0"));
    assert_eq!(i.virtual_ipaddress[0].addr.addr().to_string(), "192.0.2.30");
    let lb2 = load(
        &dir.join("12-conditionals-and-params.conf"),
        Options { config_id: Some("lb2".into()), ..Options::default() },
    );
    assert_eq!(lb2.config.vrrp_instances[0].priority, 100, "@^lb1 applies on lb2");

    let l = load(&dir.join("13-include-glob.conf"), opts(false));
    assert_eq!(l.config.virtual_servers.len(), 1, "the included file's virtual server");

    let l = load(&dir.join("24-dpvs-establish-timeout.conf"), opts(false));
    assert_eq!(l.config.virtual_servers[0].establish_timeout, 7200, "as written (DPVS would clamp to 3600)");

    let l = load(&dir.join("53-omega.conf"), opts(false));
    assert!(l.config.virtual_servers[0].omega);
}
