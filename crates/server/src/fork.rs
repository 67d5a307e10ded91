//! Forking the node with a pipe from the child back to it: the children
//! that write snapshots (`BGSAVE`, full syncs) report or stream through it.

use std::fs::File;
use std::os::fd::FromRawFd as _;

/// Where a [`with_pipe`] call returns.
pub(crate) enum Side {
    /// In the child: the pipe's write end.
    Child(File),
    /// In the parent: the child and the pipe's read end.
    Parent {
        /// The child's process id.
        pid: libc::pid_t,
        /// The pipe's read end.
        pipe: File,
    },
}

/// Makes a pipe (asking for `pipe_bytes` of room, if given; a refusal
/// leaves the default) and forks; the parent records the fork's time in
/// `engine` (`INFO stats`, `latest_fork_usec`).
///
/// # Safety
///
/// In the child only the calling thread exists. What the caller runs on
/// [`Side::Child`] must use nothing another thread could have held at the
/// fork (no logging, no runtime, no locks but the allocator's, which
/// glibc's `fork` takes and releases around itself), and must end the
/// process with `_exit`, so that no destructor or handler of the parent
/// runs in the child.
pub(crate) unsafe fn with_pipe(
    engine: &engine::Engine,
    pipe_bytes: Option<libc::c_int>,
) -> std::io::Result<Side> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(bytes) = pipe_bytes {
        // SAFETY: a hint on our own pipe.
        unsafe {
            libc::fcntl(fds[1], libc::F_SETPIPE_SZ, bytes);
        }
    }
    let forking = std::time::Instant::now();
    // SAFETY: the caller keeps the child to the rules above.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => {
            let e = std::io::Error::last_os_error();
            // SAFETY: both descriptors are ours and open.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            Err(e)
        }
        // SAFETY (both arms): each side closes the end the other uses and
        // owns the one it keeps. The child keeps nothing else of the node's
        // open (see `keep_only`).
        0 => Ok(Side::Child(unsafe {
            libc::close(fds[0]);
            File::from_raw_fd(keep_only(fds[1]))
        })),
        pid => {
            engine.record_fork(forking.elapsed().as_micros() as u64);
            Ok(Side::Parent {
                pid,
                pipe: unsafe {
                    libc::close(fds[1]);
                    File::from_raw_fd(fds[0])
                },
            })
        }
    }
}

/// In a child: closes every descriptor but the standard three and `fd`,
/// which it moves to descriptor 3 (returned). A child must not keep the
/// node's sockets open: a client the node closes would not see the
/// connection end, and a node restarted meanwhile could not bind its
/// ports. Where `close_range` is missing the descriptors stay open.
fn keep_only(fd: libc::c_int) -> libc::c_int {
    const KEPT: libc::c_int = 3;
    // SAFETY: descriptor calls on this (single-threaded) child's own table.
    unsafe {
        if fd != KEPT {
            if libc::dup2(fd, KEPT) != KEPT {
                return fd;
            }
            libc::close(fd);
        }
        libc::syscall(
            libc::SYS_close_range,
            KEPT as libc::c_uint + 1,
            libc::c_uint::MAX,
            0,
        );
    }
    KEPT
}

/// Runs a child's work and ends the process with its exit code, or with
/// 2 if it panicked: a panic must not unwind into the parent's code,
/// which the child shares up to the fork.
pub(crate) fn run_child(work: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or(2);
    // SAFETY: ends the child without running the parent's destructors or
    // exit handlers.
    unsafe { libc::_exit(code) }
}
