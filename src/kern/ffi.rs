//! The C glue functions (`kmod/glue_*.c`), declared once.
//!
//! They wrap kernel macros and inline functions that Rust cannot call
//! directly; `kmod/ngsock_glue.h` holds the C prototypes. Only the wrappers
//! of this layer call them. A module links only the glue files whose
//! functions its code uses (`build.rs`): a declaration nobody calls leaves
//! no reference behind.

use core::ffi::{c_char, c_int, c_void};

use fbsd_sys::{callout, mtx, ng_hook, ng_node, socket, thread};

/// A socket upcall (`so_upcall_t`): called with the socket-buffer (or
/// listen) lock held, must not sleep, returns `SU_OK`.
pub(in crate::kern) type SoUpcall =
    unsafe extern "C" fn(so: *mut socket, arg: *mut c_void, waitflag: c_int) -> c_int;

extern "C" {
    // glue_common.c
    pub(in crate::kern) fn ngsock_curthread() -> *mut thread;
    pub(in crate::kern) fn ngsock_mtx_init(m: *mut mtx, name: *const c_char, opts: c_int);
    pub(in crate::kern) fn ngsock_mtx_destroy(m: *mut mtx);
    pub(in crate::kern) fn ngsock_mtx_lock(m: *mut mtx);
    pub(in crate::kern) fn ngsock_mtx_unlock(m: *mut mtx);
    pub(in crate::kern) fn ngsock_msleep(
        chan: *const c_void,
        m: *mut mtx,
        wmesg: *const c_char,
    ) -> c_int;
    pub(in crate::kern) fn ngsock_node_ref(node: *mut ng_node);
    pub(in crate::kern) fn ngsock_hook_ref(hook: *mut ng_hook);
    pub(in crate::kern) fn ngsock_callout_init(c: *mut callout);
    pub(in crate::kern) fn ngsock_so_state_change(so: *mut socket, set: c_int, clear: c_int);
    pub(in crate::kern) fn ngsock_so_rcvbuf_lock(so: *mut socket);
    pub(in crate::kern) fn ngsock_so_rcvbuf_unlock(so: *mut socket);
    pub(in crate::kern) fn ngsock_console(msg: *const c_char);
    pub(in crate::kern) fn ngsock_console_line(
        prefix: *const c_char,
        msg: *const c_char,
        len: c_int,
    );

    // glue_socket.c
    pub(in crate::kern) fn ngsock_so_upcalls_set(so: *mut socket, f: SoUpcall, arg: *mut c_void);
    pub(in crate::kern) fn ngsock_so_upcalls_clear(so: *mut socket);
    pub(in crate::kern) fn ngsock_so_listen_upcall(
        so: *mut socket,
        f: Option<SoUpcall>,
        arg: *mut c_void,
    );
    pub(in crate::kern) fn ngsock_so_state(so: *mut socket) -> c_int;
    pub(in crate::kern) fn ngsock_so_listening(so: *mut socket) -> c_int;
    pub(in crate::kern) fn ngsock_so_type(so: *mut socket) -> c_int;
    pub(in crate::kern) fn ngsock_so_cantrcvmore(so: *mut socket) -> c_int;
    pub(in crate::kern) fn ngsock_so_connect_result(
        so: *mut socket,
        still_connecting: *mut c_int,
    ) -> c_int;
    pub(in crate::kern) fn ngsock_so_dequeue(head: *mut socket, so: *mut *mut socket) -> c_int;

    // ng_socket_glue.c (the tracker: caller storage of at least 32 bytes,
    // 8-aligned, unmoved between enter and exit)
    pub(in crate::kern) fn ngsock_net_epoch_enter(et: *mut c_void);
    pub(in crate::kern) fn ngsock_net_epoch_exit(et: *mut c_void);
}
