//! Binds the system DPDK: bindgen over the headers pkg-config names, a C shim for the
//! static inline functions, and links the shared libraries (PMDs load as EAL plugins).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Libraries outside `pkg-config --libs libdpdk` whose API rvs calls directly.
const EXTRA_LIBS: &[&str] = &["rte_net_bond", "rte_net_ring", "rte_bus_vdev"];

fn pkg_config(arg: &str) -> Vec<String> {
    let out = Command::new("pkg-config").args([arg, "libdpdk"]).output().unwrap_or_else(|e| {
        panic!(
            "dpdk-sys: cannot run pkg-config ({e}); install it: apt-get install pkg-config (or run scripts/setup.sh)"
        )
    });
    if !out.status.success() {
        panic!(
            "dpdk-sys: pkg-config cannot find libdpdk: {}\n\
             DPDK is not installed. On Debian 12: apt-get install libdpdk-dev dpdk \
             (scripts/setup.sh installs everything rvs needs).",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).expect("pkg-config output is UTF-8").split_whitespace().map(str::to_owned).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=build.rs");

    let cflags = pkg_config("--cflags");
    let libs = pkg_config("--libs");

    // The C shim, compiled with DPDK's own flags (rte_config.h, -march, include paths).
    let mut cc = cc::Build::new();
    cc.file("csrc/shim.c").include("csrc").warnings(false).opt_level(3);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("rvs_dpdk_shim");

    for l in &libs {
        if let Some(dir) = l.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = l.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
    for lib in EXTRA_LIBS {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // libpcap compiles and runs capture filters (tcpdump's syntax, `dpdk::bpf`).
    println!("cargo:rustc-link-lib=dylib=pcap");

    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(cflags.iter().filter(|f| !f.starts_with("-march")))
        .clang_arg("-Icsrc")
        // glibc's fopencookie (DPDK's log stream handed to Rust's logging).
        .clang_arg("-D_GNU_SOURCE")
        .allowlist_function("rte_openlog_stream|rte_log_cur_msg_loglevel|fopencookie|setvbuf")
        .allowlist_type("cookie_io_functions_t")
        .allowlist_function("rte_telemetry_register_cmd|rte_tel_data_start_dict|rte_tel_data_add_dict_u64")
        .allowlist_var("_IOLBF")
        .allowlist_function(
            "rte_eal_.*|rte_lcore_.*|rte_get_.*lcore.*|rte_socket_id|rte_get_tsc_hz|rte_strerror|rte_exit",
        )
        .allowlist_function("rte_mempool_.*|rte_pktmbuf_.*|rte_mbuf_.*")
        .allowlist_function("rte_eth_.*|rte_flow_.*|rte_ring_create|rte_ring_free|rte_ring_lookup")
        .allowlist_function("rte_pdump_.*|rte_pcapng_.*|rte_vdev_.*|rte_dev_.*")
        .allowlist_function("pcap_open_dead|pcap_compile|pcap_geterr|pcap_freecode|pcap_close|bpf_filter")
        .allowlist_type("bpf_program|bpf_insn|pcap_t")
        .allowlist_var("DLT_EN10MB|PCAP_NETMASK_UNKNOWN")
        .allowlist_function("rvs_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // Packed protocol headers holding aligned fields: Rust rejects them (E0588).
        // rvs parses packets with its own `wire` crate.
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_psc_.*")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_flow_item_l2tpv2")
        .opaque_type("rte_flow_item_gtp_psc")
        .opaque_type("rte_flow_item_arp_eth_ipv4")
        .opaque_type("port_params")
        .opaque_type("lacpdu.*|slow_protocol.*|marker.*")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("dpdk-sys: bindgen failed over the DPDK headers (is libclang-dev installed?)");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    bindings.write_to_file(out.join("bindings.rs")).expect("dpdk-sys: cannot write bindings.rs");
}
