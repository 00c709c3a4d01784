//! Commands of DPDK's telemetry socket (`dpdk-telemetry.py`, `/var/run/dpdk/<prefix>/
//! dpdk_telemetry.v2`): a command answers with a dictionary of named counters, computed
//! by a Rust handler when asked, on DPDK's telemetry thread.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Mutex, OnceLock};

use dpdk_sys as sys;

use crate::error::{Error, Result};

/// What a command answers: counters by name (at most 256 are sent; names are cut at 63
/// bytes, as DPDK's dictionaries allow).
pub type Dict = Vec<(String, u64)>;

/// A command's handler: given the command's parameters (after the comma), its dictionary.
pub type Handler = Box<dyn Fn(&str) -> Dict + Send + Sync>;

fn handlers() -> &'static Mutex<HashMap<String, Handler>> {
    static HANDLERS: OnceLock<Mutex<HashMap<String, Handler>>> = OnceLock::new();
    HANDLERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers `cmd` (`/rvs/stats`: a slash, then letters, digits, `_` and `/`) with its
/// `help` line. DPDK's telemetry must be running (the EAL started without
/// `--no-telemetry`). A command registered twice keeps its first handler in DPDK.
pub fn register(cmd: &str, help: &str, handler: Handler) -> Result<()> {
    let bad = |what: &str| Error::invalid("rte_telemetry_register_cmd", format!("command {cmd:?}: {what}"));
    if !cmd.starts_with('/') || !cmd.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/') {
        return Err(bad("a slash, then letters, digits, _ and /"));
    }
    let c_cmd = CString::new(cmd).map_err(|_| bad("NUL"))?;
    let c_help = CString::new(help).map_err(|_| bad("NUL in help"))?;
    handlers().lock().unwrap_or_else(|p| p.into_inner()).insert(cmd.to_string(), handler);
    // SAFETY: both strings are valid NUL-terminated C strings for the call (DPDK copies
    // them into its own table); `callback` matches `telemetry_cb` and lives forever.
    let rc = unsafe { sys::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(callback), c_help.as_ptr()) };
    if rc < 0 {
        return Err(Error::from_code(format!("rte_telemetry_register_cmd({cmd})"), rc));
    }
    Ok(())
}

/// DPDK's telemetry thread calls this for each registered command.
unsafe extern "C" fn callback(cmd: *const c_char, params: *const c_char, d: *mut sys::rte_tel_data) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -1;
    }
    // SAFETY: DPDK passes the command and (possibly null) parameters as NUL-terminated
    // strings valid for the call.
    let (cmd, params) = unsafe {
        (
            CStr::from_ptr(cmd).to_string_lossy().into_owned(),
            if params.is_null() { String::new() } else { CStr::from_ptr(params).to_string_lossy().into_owned() },
        )
    };
    // Never unwind into C.
    let dict = std::panic::catch_unwind(|| {
        let map = handlers().lock().unwrap_or_else(|p| p.into_inner());
        map.get(&cmd).map(|h| h(&params))
    });
    let Ok(Some(dict)) = dict else { return -1 };
    // SAFETY: `d` is the container DPDK gave this call.
    unsafe { sys::rte_tel_data_start_dict(d) };
    for (name, value) in dict.into_iter().take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize) {
        let mut name = name;
        name.truncate(63);
        let Ok(name) = CString::new(name) else { continue };
        // SAFETY: `d` was started as a dictionary above; DPDK copies the name.
        unsafe { sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), value) };
    }
    0
}
