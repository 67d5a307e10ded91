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

/// How long the reader waits for the child to write anything before it
/// gives up (and kills it).
const STALL_LIMIT_MS: libc::c_int = 30_000;

/// A forked child writing a snapshot into a pipe: an iterator over its
/// chunks.
pub(crate) struct SnapshotChild {
    pid: libc::pid_t,
    pipe: File,
    /// [`STALL_LIMIT_MS`], shorter in tests.
    stall_ms: libc::c_int,
    /// The child was waited for (it ended, or was killed and reaped).
    reaped: bool,
}

/// Forks a child that writes `engine`'s snapshot, as it is now, into a
/// pipe. Call with the engine locked; the parent returns at once.
pub(crate) fn fork(engine: &Engine) -> std::io::Result<SnapshotChild> {
    // SAFETY: see the module's comment; the child only runs
    // `write_in_child`, which ends in `_exit`.
    match unsafe { crate::fork::with_pipe(engine, Some(PIPE_BYTES)) }? {
        crate::fork::Side::Child(pipe) => write_in_child(engine, pipe),
        crate::fork::Side::Parent { pid, pipe } => Ok(SnapshotChild {
            pid,
            pipe,
            stall_ms: STALL_LIMIT_MS,
            reaped: false,
        }),
    }
}

/// The engine's snapshot as it is now (call with the engine locked), for
/// `what` (a log line's words): from a forked child, or, where fork
/// fails, copied under the lock as before forking existed.
pub(crate) fn chunks(engine: &Engine, what: &str) -> replication::link::SnapshotChunks {
    match fork(engine) {
        Ok(child) => Box::new(child),
        Err(e) => {
            tracing::warn!(error = %e, "fork for {what} failed: copying under the lock instead");
            let copied: Vec<Vec<u8>> = engine.snapshot_writer().collect();
            Box::new(copied.into_iter().map(Ok))
        }
    }
}

/// A whole snapshot file: `header`, then every chunk of `chunks` (which
/// may block while a child writes them).
pub(crate) fn file(
    header: Vec<u8>,
    chunks: impl IntoIterator<Item = Result<Vec<u8>, String>>,
) -> Result<Vec<u8>, String> {
    let mut file = header;
    for chunk in chunks {
        file.extend_from_slice(&chunk?);
    }
    Ok(file)
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
    crate::fork::run_child(|| {
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
        i32::from(written.is_err())
    })
}

impl SnapshotChild {
    /// Waits for the child to end (it has closed the pipe, or was
    /// killed); its exit status.
    fn reap(&mut self) -> Option<libc::c_int> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out
            // pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.reaped = true;
                return Some(status);
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                // Not our child any more (ECHILD): nothing left to wait for.
                self.reaped = true;
                return None;
            }
        }
    }

    /// Waits until the pipe has something to read, at most
    /// [`STALL_LIMIT_MS`]: a child that stopped writing (stopped, frozen)
    /// must not hold the reader, and with it the follower, forever.
    fn wait_readable(&self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let mut fd = libc::pollfd {
            fd: self.pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut fd, 1, self.stall_ms) } {
                0 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("nothing written for {} ms", self.stall_ms),
                    ))
                }
                n if n > 0 => return Ok(()),
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Fills `buf` from the pipe, waiting at most [`STALL_LIMIT_MS`] for
    /// each read.
    fn read_all(&mut self, mut buf: &mut [u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            self.wait_readable()?;
            match self.pipe.read(buf) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the next chunk: `Ok(None)` after [`END`].
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut len = [0u8; 4];
        if let Err(e) = self.read_all(&mut len) {
            return Err(self.failed(&e));
        }
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
        if let Err(e) = self.read_all(&mut chunk) {
            return Err(self.failed(&e));
        }
        Ok(Some(chunk))
    }

    /// Ends the child, if it has not been reaped (so the pid is still its).
    fn kill(&self) {
        if !self.reaped {
            // SAFETY: signals our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }

    /// Why the pipe ended early: how the child ended.
    fn failed(&mut self, read: &std::io::Error) -> String {
        if read.kind() != std::io::ErrorKind::UnexpectedEof {
            // It may still be running (stalled): it must end before the
            // wait.
            self.kill();
        }
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
            self.kill();
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

    /// What each open descriptor of process `pid` is (`socket:[inode]`,
    /// `pipe:[inode]`, a path).
    fn open_files(pid: libc::pid_t) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("its descriptors")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn the_child_keeps_none_of_the_nodes_sockets() {
        use std::os::fd::AsRawFd as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let socket = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .expect("the socket's name")
            .display()
            .to_string();
        // More than the pipe holds: the child is still alive, blocked.
        let engine = engine_with(200_000);
        let mut child = fork(&engine).expect("fork");
        // It has run past its start once it writes.
        assert!(child.next().expect("a chunk").is_ok());
        let files = open_files(child.pid);
        assert!(
            !files.contains(&socket),
            "the child holds {socket}: {files:?}"
        );
        assert!(
            files.len() <= 4,
            "only the standard three and its pipe: {files:?}"
        );
    }

    #[test]
    fn a_stopped_child_is_given_up_on_not_waited_for() {
        let engine = engine_with(200_000);
        let mut child = fork(&engine).expect("fork");
        child.stall_ms = 300;
        // Let it fill the pipe, then stop it.
        std::thread::sleep(std::time::Duration::from_millis(200));
        // SAFETY: signals our own child.
        unsafe {
            libc::kill(child.pid, libc::SIGSTOP);
        }
        // Drained, then nothing more: the reader gives up and kills it.
        let results: Vec<Result<Vec<u8>, String>> = child.by_ref().collect();
        let err = results
            .last()
            .expect("reported")
            .as_ref()
            .expect_err("an error");
        assert!(err.contains("signal 9"), "{err}");
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
