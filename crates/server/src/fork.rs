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
/// leaves the default) and forks.
///
/// # Safety
///
/// In the child only the calling thread exists. What the caller runs on
/// [`Side::Child`] must use nothing another thread could have held at the
/// fork (no logging, no runtime, no locks but the allocator's, which
/// glibc's `fork` takes and releases around itself), and must end the
/// process with `_exit`, so that no destructor or handler of the parent
/// runs in the child.
pub(crate) unsafe fn with_pipe(pipe_bytes: Option<libc::c_int>) -> std::io::Result<Side> {
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
        // owns the one it keeps.
        0 => Ok(Side::Child(unsafe {
            libc::close(fds[0]);
            File::from_raw_fd(fds[1])
        })),
        pid => Ok(Side::Parent {
            pid,
            pipe: unsafe {
                libc::close(fds[1]);
                File::from_raw_fd(fds[0])
            },
        }),
    }
}
