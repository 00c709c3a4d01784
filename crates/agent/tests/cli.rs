//! The binary's validation mode: `rvs-agent -t -f FILE`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// One sd_notify datagram. A signal to the test process (another test's child ending,
/// with a handler installed) interrupts a receive with a timeout whatever SA_RESTART says
/// (signal(7)): such a receive is tried again.
fn recv_notify(sock: &std::os::unix::net::UnixDatagram, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match sock.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn conf(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name).display().to_string()
}

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvs-agent")).args(args).env("RVS_LOG", "off").output().unwrap()
}

#[test]
fn valid_files_pass_and_broken_ones_fail_with_file_and_line() {
    let ok = agent(&["-t", "-f", &conf("dpvs-fnat-master.conf")]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stderr).contains("configuration OK"));

    let bad = agent(&["-t", "-f", &conf("broken.conf")]);
    assert_eq!(bad.status.code(), Some(5), "keepalived's KEEPALIVED_EXIT_CONFIG_TEST");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("broken.conf:41: error: unknown lb_kind 'TUNNEL' (FNAT, NAT, DR, TUN)"), "{err}");
    assert!(err.contains("15 error(s); refusing the configuration"), "{err}");

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
        "global_defs {\n enable_traps\n}\n\
         vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  10.0.0.9\n }\n}\n",
    )
    .unwrap();
    let f = f.display().to_string();
    let t = agent(&["-t", "-f", &f]);
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(t.status.success(), "{err}");
    assert!(err.contains("k.conf:2: warning: 'enable_traps' is accepted and not honoured"), "{err}");
    let strict = agent(&["-t", "--strict", "-f", &f]);
    assert_eq!(strict.status.code(), Some(5));
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("k.conf:2: error: 'enable_traps'"), "{err}");
    assert!(err.contains("--strict: warnings are errors"), "{err}");

    std::fs::write(
        dir.join("u.conf"),
        "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n use_vmac\n virtual_rules {\n  from 10.0.0.9 table 100\n }\n}\n",
    )
    .unwrap();
    let u = agent(&["-t", "-f", &dir.join("u.conf").display().to_string()]);
    assert_eq!(u.status.code(), Some(5));
    let err = String::from_utf8_lossy(&u.stderr);
    assert!(
        err.contains(
            "u.conf:5: error: 'virtual_rules' (in vrrp_instance) is valid keepalived that rvs does not support yet"
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

/// A private directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("rvs-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// keepalived.service's way of running it (`--dont-fork` and DAEMON_ARGS `-D -l -p FILE`):
/// it starts, tells systemd it is ready, writes the pid file, refuses a second start on the
/// same pid file, and on SIGTERM exits cleanly, removing the pid file.
#[test]
fn runs_as_keepalived_unit_writes_and_removes_the_pid_file() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let dir = TempDir::new("unit");
    std::fs::write(dir.path("k.conf"), "global_defs {\n router_id T\n}\n").unwrap();
    let pid = dir.path("rvs-agent.pid");
    let notify = UnixDatagram::bind(dir.path("notify")).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conf = dir.path("k.conf");
    let status = dir.path("status.sock");
    let args = ["--dont-fork", "-D", "-l", "-p", &pid, "-f", &conf, "--dataplane", "linux", "--status-socket", &status];
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvs-agent"))
        .args(args)
        .env("RVS_LOG", "off")
        .env("NOTIFY_SOCKET", dir.path("notify"))
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = recv_notify(&notify, &mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&pid).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&pid).unwrap(), format!("{}\n", child.id()));

    // The pid file names a running rvs-agent: a second one refuses to start.
    let second = agent(&["-n", "-p", &pid, "-f", &conf, "--dataplane", "linux", "--status-socket", &dir.path("s2")]);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("rvs-agent is already running"));
    assert_eq!(std::fs::read_to_string(&pid).unwrap(), format!("{}\n", child.id()));

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let n = recv_notify(&notify, &mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(!std::path::Path::new(&pid).exists(), "pid file removed at exit");
    assert!(!std::path::Path::new(&status).exists(), "status socket removed at exit");
}

/// Every keepalived option rvs-agent does not honour is named: a warning for those it
/// can run without, a refusal (exit status 2) for those whose absence changes failover;
/// --signum as keepalived's.
#[test]
fn keepalived_options_not_honoured_are_named() {
    let conf = conf("dpvs-fnat-master.conf");
    let out = agent(&["-t", "-x", "-a", "-S", "local1", "-A", "/run/agentx", "-b", "/run/b.pid", "-f", &conf]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for name in
        ["-x/--snmp", "-a/--address-monitoring", "-S/--log-facility local1", "-A/--snmp-agent-socket", "-b/--bfd_pid"]
    {
        assert!(err.contains(&format!("rvs-agent: warning: {name}")), "{name}: {err}");
    }
    for (flag, name) in
        [("-V", "-V/--dont-release-vrrp"), ("--release-vips", "-X/--release-vips"), ("-T", "-T/--genhash")]
    {
        let out = agent(&[flag, "-f", &conf]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(name), "{flag}");
    }
    let bad = agent(&["-S", "local9", "-t", "-f", &conf]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid facility 'local9'"));
    let unknown = agent(&["--log-file", "/tmp/x", "-t", "-f", &conf]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--log-file"));
    let sig = agent(&["--signum=RELOAD"]);
    assert_eq!(String::from_utf8_lossy(&sig.stdout), "1\n");
    assert_eq!(String::from_utf8_lossy(&agent(&["--signum=STOP"]).stdout), "15\n");
    assert!(!agent(&["--signum=DATA"]).status.success());
    let v = agent(&["-v"]);
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("rvs-agent "));
}

/// -P and -C run one side of the file; -d shows what runs; -e makes a missing include an
/// error; -t=LOG_FILE writes the report there.
#[test]
fn vrrp_only_checkers_only_dump_all_config_and_test_log() {
    let conf = conf("dpvs-fnat-master.conf");
    let p = agent(&["-t", "-d", "-P", "-f", &conf]);
    let err = String::from_utf8_lossy(&p.stderr);
    assert!(p.status.success(), "{err}");
    assert!(err.contains("\"virtual_servers\": []") && !err.contains("\"vrrp_instances\": []"), "{err}");
    let c = agent(&["-t", "-d", "-C", "-f", &conf]);
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(err.contains("\"vrrp_instances\": []") && !err.contains("\"virtual_servers\": []"), "{err}");

    let dir = TempDir::new("cli-e");
    std::fs::write(dir.path("k.conf"), "include /nonexistent-rvs/*.conf\nglobal_defs {\n router_id T\n}\n").unwrap();
    let k = dir.path("k.conf");
    assert!(agent(&["-t", "-f", &k]).status.success());
    let e = agent(&["-t", "-e", "-f", &k]);
    assert_eq!(e.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&e.stderr).contains("matches no file (-e/--all-config)"));
    let log = dir.path("test.log");
    let t = agent(&[&format!("--config-test={log}"), "-f", &k]);
    assert!(t.status.success());
    assert!(!String::from_utf8_lossy(&t.stderr).contains("configuration OK"));
    assert!(std::fs::read_to_string(&log).unwrap().contains("configuration OK (1 warning(s))"));
}

/// `-s NAME` runs the agent in network namespace NAME (`ip netns`), `-u MASK` sets its
/// umask (the pid file it writes shows it).
#[test]
fn namespace_and_umask() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    let ns = testnet::NetNs::new("rvsag");
    let dir = TempDir::new("netns");
    std::fs::write(dir.path("k.conf"), "global_defs {\n router_id T\n}\n").unwrap();
    let pid = dir.path("a.pid");
    let notify = UnixDatagram::bind(dir.path("notify")).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conf = dir.path("k.conf");
    let status = dir.path("status.sock");
    let args = [
        "-n",
        "-s",
        ns.name(),
        "-u",
        "077",
        "-p",
        &pid,
        "-f",
        &conf,
        "--dataplane",
        "linux",
        "--status-socket",
        &status,
    ];
    let mut child = testnet::ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_rvs-agent"))
            .args(args)
            .env("RVS_LOG", "off")
            .env("NOTIFY_SOCKET", dir.path("notify"))
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 64];
    let n = recv_notify(&notify, &mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    let inside = std::fs::metadata(format!("/proc/{}/ns/net", child.pid())).unwrap();
    let want = std::fs::metadata(format!("/run/netns/{}", ns.name())).unwrap();
    assert_eq!((inside.dev(), inside.ino()), (want.dev(), want.ino()), "the agent's network namespace");
    assert_eq!(std::fs::metadata(&pid).unwrap().permissions().mode() & 0o777, 0o600, "umask 077");
    assert!(child.running());

    let missing =
        agent(&["-n", "-s", "rvs-no-such-ns", "-f", &conf, "--dataplane", "linux", "--status-socket", &dir.path("s2")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("-s/--namespace rvs-no-such-ns"));
    drop(child);

    // keepalived's net_namespace in the file does the same; -s overrides it.
    std::fs::write(dir.path("k.conf"), format!("net_namespace {}\n", ns.name())).unwrap();
    let args = ["-n", "-f", &conf, "--dataplane", "linux", "--status-socket", &status];
    let env = [("RVS_LOG", "off".to_string()), ("NOTIFY_SOCKET", dir.path("notify"))];
    let child =
        testnet::ChildGuard::new(Command::new(env!("CARGO_BIN_EXE_rvs-agent")).args(args).envs(env).spawn().unwrap());
    let n = recv_notify(&notify, &mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    let inside = std::fs::metadata(format!("/proc/{}/ns/net", child.pid())).unwrap();
    assert_eq!((inside.dev(), inside.ino()), (want.dev(), want.ino()), "net_namespace");
    drop(child);
    std::fs::write(dir.path("k.conf"), "net_namespace rvs-no-such-ns\n").unwrap();
    let missing = agent(&["-n", "-f", &conf, "--dataplane", "linux", "--status-socket", &dir.path("s3")]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("net_namespace rvs-no-such-ns"), "{missing:?}");
    let overridden =
        agent(&["-n", "-s", "rvs-other-ns", "-f", &conf, "--dataplane", "linux", "--status-socket", &dir.path("s4")]);
    assert!(String::from_utf8_lossy(&overridden.stderr).contains("-s/--namespace rvs-other-ns"), "{overridden:?}");
}
