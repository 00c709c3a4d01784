//! The Environment Abstraction Layer: initialised once per process, lcores, time.

use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The lcore id DPDK gives threads it did not create.
pub const LCORE_ANY: u32 = u32::MAX;

/// The initialised EAL. DPDK allows one initialisation per process: a second
/// [`Eal::init`] fails (even after the first was dropped).
pub struct Eal {
    _private: (),
}

/// A closure running on a worker lcore; [`LaunchHandle::wait`] returns its result.
pub struct LaunchHandle {
    lcore: u32,
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `Eal::launch` for exactly this call; we take
    // ownership back once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Eal {
    /// Initialises the EAL from command-line style arguments (the first is the program
    /// name). Callers on machines with a NIC they do not own must pass `--no-pci` or an
    /// explicit `-a` allowlist; this function refuses arguments that would let the EAL
    /// probe every PCI device.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let pci_safe =
            args.iter().any(|a| a == "--no-pci" || a == "-a" || a.starts_with("-a") || a.starts_with("--allow"));
        if !pci_safe {
            return Err(Error::invalid(
                "rte_eal_init",
                "EAL arguments must contain --no-pci or an -a/--allow list (never probe every PCI device)",
            ));
        }
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::invalid("rte_eal_init", "the EAL is already initialised in this process"));
        }
        let mut c_args = Vec::with_capacity(args.len());
        for a in &args {
            let c = CString::new(a.as_str())
                .map_err(|_| Error::invalid("rte_eal_init", format!("argument {a:?} contains NUL")))?;
            c_args.push(c.into_raw());
        }
        // The EAL may keep pointers into argv for the life of the process: leak both.
        let argv: &'static mut [*mut i8] = Box::leak(c_args.into_boxed_slice());
        // SAFETY: argv holds argc valid NUL-terminated strings that live forever.
        let rc = unsafe { dpdk_sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(Error::from_errno("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// Lets `dpdk-dumpcap` and `dpdk-pdump` attach to this process as DPDK secondary
    /// processes (`--file-prefix` of this one) and capture its ports (librte_pdump's
    /// server side: its rx/tx callbacks are installed only while one captures). They
    /// need the memory shared, i.e. hugepages: under `--no-huge` a secondary cannot map
    /// the primary's memory.
    pub fn pdump_init(&self) -> Result<()> {
        // SAFETY: called once after EAL init on the main thread; registers an IPC action
        // and reserves a memzone.
        let rc = unsafe { dpdk_sys::rte_pdump_init() };
        if rc < 0 {
            return Err(Error::from_errno("rte_pdump_init"));
        }
        Ok(())
    }

    /// The main lcore's id.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: plain query after init.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Ids of the enabled worker lcores (all but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i: u32 = u32::MAX;
        loop {
            // SAFETY: plain query after init; -1 as unsigned starts the iteration.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
            if i >= dpdk_sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: plain query after init.
        unsafe { dpdk_sys::rte_lcore_count() }
    }

    /// Runs `f` on worker lcore `lcore`. The lcore must be idle.
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<LaunchHandle>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job) as *mut c_void;
        // SAFETY: trampoline takes back ownership of `arg` exactly once when it runs.
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so the trampoline never ran: reclaim the job.
            drop(unsafe { Box::from_raw(arg as *mut Job) });
            return Err(Error::from_code(format!("rte_eal_remote_launch(lcore {lcore})"), rc));
        }
        Ok(LaunchHandle { lcore })
    }
}

impl LaunchHandle {
    /// The lcore the closure runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to finish and returns its result (-1 if it panicked).
    pub fn wait(self) -> i32 {
        // SAFETY: plain call; blocks until the lcore is idle.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, after every user of DPDK objects is gone (they borrow
        // nothing from Eal, so callers drop ports/pools first by scope order).
        unsafe {
            dpdk_sys::rte_eal_mp_wait_lcore();
            dpdk_sys::rte_eal_cleanup();
        }
    }
}

/// The calling thread's lcore id, or [`LCORE_ANY`] for threads DPDK did not create.
#[inline]
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { dpdk_sys::rvs_lcore_id() }
}

/// The time-stamp counter (cycles).
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC.
    unsafe { dpdk_sys::rvs_rdtsc() }
}

/// TSC cycles per second, as measured by the EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain query.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
