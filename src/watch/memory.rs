//! Memory for a process that runs for weeks. A cycle over a thousand targets allocates tens of
//! megabytes of answers and drops them. glibc gives each thread that allocates under contention
//! an arena of its own (up to eight per core), keeps freed memory in them, and the watcher's
//! resident size crept up with the arenas — 18 MB after the first cycle, 25 MB by the
//! twentieth, 28 MB later (the soak, `docs/benchmarks.md`) — though nothing was kept. So a
//! watcher allocates from one arena (its threads wait on I/O, not on the allocator's lock),
//! and gives free memory back between cycles, when nothing is in flight: the RSS a
//! container's limit sees is then the memory in use, and a leak would stand out from it. The
//! connections kept open between cycles are closed too (`BambooClient::close_idle_connections`).
/// Makes glibc allocate from one arena, before the watcher's work starts (elsewhere, nothing
/// to do).
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter under the allocator's own lock; M_ARENA_MAX
    // only bounds how many arenas later threads may create.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the allocator's free memory to the system (glibc; elsewhere nothing to do).
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free lists, under its own
    // locks; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}
