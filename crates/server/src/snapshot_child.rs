//! Full-sync snapshots streamed from a forked child.
//!
//! A full sync needs the data as it was at one log position. Copying it
//! under the engine lock paused every client of the primary for the whole
//! copy (about 25 ms per million small keys) and held the copy in memory
//! until it was sent. Instead, with the engine locked, the node forks: the
//! child has a copy-on-write image of the memory at that instant and
//! writes the snapshot's chunks into a pipe, which the follower's task
//! reads and sends as they come. The node pauses only for the fork.
//!
//! On the pipe each chunk is a little-endian `u32` length and its bytes;
//! [`END`] in place of a length says the child wrote everything. A pipe
//! that ends without it means the child failed; the reader reports an
//! error and the full sync is abandoned (the secondary reconnects and asks
//! again). A reader dropped before the end kills and reaps the child.
//!
//! Why forking is sound in this multi-threaded process is the same
//! argument as for `BGSAVE` (`persist::fork_writer`): the child has only
//! the forking thread, which holds the engine lock; it reads the engine's
//! memory, allocates (glibc's `fork` takes and releases the allocator's
//! arena locks around it) and writes to a pipe, never logs or touches the
//! runtime, and leaves with `_exit`.

use std::fs::File;
use std::io::{Read, Write};

use engine::Engine;

/// Written in place of a length after the last chunk.
const END: u32 = u32::MAX;

/// The pipe's size asked for (Linux caps it at `pipe-max-size`, 1 MiB by
/// default); a smaller pipe only means more context switches.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// A forked child writing a snapshot into a pipe: an iterator over its
/// chunks.
pub(crate) struct SnapshotChild {
    pid: libc::pid_t,
    pipe: File,
    /// The child was waited for (it ended, or was killed and reaped).
    reaped: bool,
}

/// Forks a child that writes `engine`'s snapshot, as it is now, into a
/// pipe. Call with the engine locked; the parent returns at once.
pub(crate) fn fork(engine: &Engine) -> std::io::Result<SnapshotChild> {
    // SAFETY: see the module's comment; the child only runs
    // `write_in_child`, which ends in `_exit`.
    match unsafe { crate::fork::with_pipe(Some(PIPE_BYTES)) }? {
        crate::fork::Side::Child(pipe) => write_in_child(engine, pipe),
        crate::fork::Side::Parent { pid, pipe } => Ok(SnapshotChild {
            pid,
            pipe,
            reaped: false,
        }),
    }
}

/// The child's whole life: write every chunk, then [`END`], and `_exit`.
fn write_in_child(engine: &Engine, pipe: File) -> ! {
    // SAFETY: resetting dispositions in a single-threaded child (the
    // parent's handlers write to the parent's runtime). With SIGPIPE at
    // its default, a parent that stopped reading ends the child.
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_DFL);
        }
        // The node's own work comes first where the two share a CPU.
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, pipe);
    let written = (|| {
        for chunk in engine.snapshot_writer() {
            let len = u32::try_from(chunk.len())
                .ok()
                .filter(|&len| len != END)
                .ok_or(std::io::ErrorKind::InvalidData)?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&chunk)?;
        }
        out.write_all(&END.to_le_bytes())?;
        out.flush()
    })();
    let code = i32::from(written.is_err());
    drop(out);
    // SAFETY: ends the child without running the parent's destructors or
    // exit handlers.
    unsafe { libc::_exit(code) }
}

impl SnapshotChild {
    /// Waits for the child to end (it has closed the pipe, or was
    /// killed); its exit status.
    fn reap(&mut self) -> Option<libc::c_int> {
        if self.reaped {
            return None;
        }
        self.reaped = true;
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        (r == self.pid).then_some(status)
    }

    /// Reads the next chunk: `Ok(None)` after [`END`].
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut len = [0u8; 4];
        self.pipe
            .read_exact(&mut len)
            .map_err(|e| self.failed(&e))?;
        let len = u32::from_le_bytes(len);
        if len == END {
            return match self.reap() {
                Some(status) if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => {
                    Ok(None)
                }
                _ => Err("the snapshot process ended with an error".into()),
            };
        }
        let mut chunk = vec![0; len as usize];
        self.pipe
            .read_exact(&mut chunk)
            .map_err(|e| self.failed(&e))?;
        Ok(Some(chunk))
    }

    /// Why the pipe ended early: how the child ended.
    fn failed(&mut self, read: &std::io::Error) -> String {
        match self.reap() {
            Some(s) if libc::WIFSIGNALED(s) => format!(
                "the snapshot process was killed by signal {}",
                libc::WTERMSIG(s)
            ),
            Some(s) if libc::WIFEXITED(s) => format!(
                "the snapshot process exited with status {} before the end ({read})",
                libc::WEXITSTATUS(s)
            ),
            _ => format!("reading the snapshot process: {read}"),
        }
    }
}

impl Iterator for SnapshotChild {
    type Item = Result<Vec<u8>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reaped {
            return None;
        }
        self.read_chunk().transpose()
    }
}

impl Drop for SnapshotChild {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signals our own child, which has not been reaped, so
            // the pid is still its.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            self.reap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_with(keys: usize) -> Engine {
        let mut engine = Engine::new(engine::Config::default());
        for i in 0..keys {
            let key = format!("key:{i}");
            engine
                .apply_op(0, [&b"SET"[..], key.as_bytes(), b"value"])
                .expect("SET applies");
        }
        engine
    }

    #[test]
    fn the_child_streams_what_the_engine_would_copy() {
        let engine = engine_with(20_000);
        let copied: Vec<Vec<u8>> = engine.snapshot_writer().collect();
        let streamed: Result<Vec<Vec<u8>>, String> = fork(&engine).expect("fork").collect();
        assert_eq!(streamed.expect("streams"), copied);
        assert!(copied.len() > 1, "several chunks: {}", copied.len());
    }

    #[test]
    fn a_reader_that_stops_early_leaves_no_child_behind() {
        let engine = engine_with(50_000);
        let mut child = fork(&engine).expect("fork");
        let pid = child.pid;
        assert!(child.next().expect("a chunk").is_ok());
        drop(child);
        // Reaped: the pid is no longer our child.
        // SAFETY: asks about a pid without blocking; no pointer is passed.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(r, -1, "the child was reaped by the drop");
    }

    #[test]
    fn a_killed_child_is_an_error_not_a_short_snapshot() {
        // More than the pipe and the child's buffer hold: the child is
        // still writing when it is killed.
        let engine = engine_with(200_000);
        let mut child = fork(&engine).expect("fork");
        // SAFETY: signals our own child.
        unsafe {
            libc::kill(child.pid, libc::SIGKILL);
        }
        let results: Vec<Result<Vec<u8>, String>> = child.by_ref().collect();
        let last = results.last().expect("something is reported");
        let err = last.as_ref().expect_err("the end is an error");
        assert!(err.contains("signal 9"), "{err}");
        assert!(child.next().is_none(), "nothing after the error");
    }
}
