//! Giving freed memory back between cycles. A cycle over a thousand targets allocates tens of
//! megabytes of answers and drops them; glibc's allocator keeps such memory in its per-thread
//! arenas, so a watcher's resident size creeps up to the worst cycle any of its threads has
//! seen and stays there. Between cycles nothing is in flight: trimming then makes the RSS a
//! container's memory limit sees the memory the watcher uses, and a leak stand out from it.

/// Returns the allocator's free memory to the system (glibc; elsewhere nothing to do).
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free lists, under its own
    // locks; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}
