#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, mimalloc.h of mimalloc 3; the Rust
/// bindings name only the older options). The test below checks it still reads that option's default
/// (1000 ms in options.c of libmimalloc-sys 0.1.49).
#[cfg(not(feature = "system-allocator"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory stays in the process instead of going back to the OS after the purge delay.
/// A run is one short process whose heap grows to its peak: purged pages came back as fresh ones, and
/// zeroing them (huge pages, in the page-fault handler) cost a fifth of a run's CPU time on a 2-core VM.
#[cfg(not(feature = "system-allocator"))]
fn keep_freed_memory() {
    // SAFETY: a plain option store, made before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// No transparent huge pages for this process (`prctl(PR_SET_THP_DISABLE)`, which also covers the arena
/// mimalloc reserved and marked `MADV_HUGEPAGE` before `main`; its own `MIMALLOC_ALLOW_THP` is read only
/// then). A run's heap is first touched once and its pages are never reused by a later run, so a huge page
/// buys no TLB reach worth its cost: on a 2-core VM, zeroing each fresh 2 MiB page in the fault handler was
/// a fifth of a lone run's CPU time (perf). Inside a sweep, where each run reuses pages the last one freed,
/// the gain is small.
#[cfg(target_os = "linux")]
fn no_huge_pages() {
    // SAFETY: sets a flag of this process; no pointers are passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Only the speed depends on it.
        eprintln!(
            "gregor: cannot turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn main() -> std::process::ExitCode {
    #[cfg(not(feature = "system-allocator"))]
    keep_freed_memory();
    #[cfg(target_os = "linux")]
    no_huge_pages();
    gregor::cli::main()
}

#[cfg(all(test, not(feature = "system-allocator")))]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_reads_its_1000_ms_default() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment overrides the default this test recognises the option by
        }
        // SAFETY: reads an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_once_asked() {
        no_huge_pages();
        // SAFETY: reads a flag of this process.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
