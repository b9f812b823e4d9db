//! The current thread.

use fbsd_sys::thread;

/// The running kernel thread.
#[derive(Clone, Copy)]
pub(in crate::kern) struct CurThread(*mut thread);

impl CurThread {
    /// The thread executing this code: `curthread`, the first word of the
    /// per-CPU block `%gs` points to (`pc_curthread`), read as amd64's
    /// `__curthread()` does: one load, no call.
    #[inline]
    pub(in crate::kern) fn get() -> Self {
        const _: () = assert!(core::mem::offset_of!(fbsd_sys::pcpu, pc_curthread) == 0);
        let td: *mut thread;
        // SAFETY: in kernel context %gs holds the per-CPU block, whose
        // pc_curthread (offset 0, checked above) is the running thread; the
        // load has no side effects and touches no Rust-visible memory.
        unsafe {
            core::arch::asm!(
                "mov {}, qword ptr gs:[0]",
                out(reg) td,
                options(nostack, preserves_flags, readonly, pure)
            );
        }
        CurThread(td)
    }

    /// Raw pointer, for kernel calls that take `struct thread *`.
    pub(in crate::kern) fn as_ptr(self) -> *mut thread {
        self.0
    }
}

/// `PRIV_NETGRAPH_CONTROL`: the privilege of opening a netgraph control
/// socket.
#[allow(clippy::cast_possible_wrap)]
pub const PRIV_NETGRAPH_CONTROL: i32 = fbsd_sys::PRIV_NETGRAPH_CONTROL as i32;

/// `PRIV_NETINET_BINDANY`: binding to (and sending from) any address.
#[allow(clippy::cast_possible_wrap)]
pub const PRIV_NETINET_BINDANY: i32 = fbsd_sys::PRIV_NETINET_BINDANY as i32;

/// `priv_check(curthread, privilege)`: `EPERM` (or another errno) when the
/// running thread lacks it. Only where sleeping is allowed.
pub fn priv_check(privilege: i32) -> crate::kern::errno::KResult<()> {
    // SAFETY: the running thread is valid for the call.
    crate::kern::errno::Errno::check(unsafe {
        fbsd_sys::priv_check(CurThread::get().as_ptr(), privilege)
    })
}
