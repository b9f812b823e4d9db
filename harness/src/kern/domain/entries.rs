//! The exported domain and socket-state functions, and helpers for tests
//! written in Rust.

use super::*;

kernel_functions! {
    /// `void domain_add(struct domain *)` (DOMAIN_SET's SYSINIT)
    fn domain_add(dp: *mut domain) [c] {
        domain_add_impl(dp, c);
    }

    /// `void domain_remove(struct domain *)` (DOMAIN_SET's SYSUNINIT)
    fn domain_remove(dp: *mut domain) [c] {
        domain_remove_impl(dp, c);
    }

    /// `struct domain *pffinddomain(int family)`
    fn pffinddomain(family: c_int) -> *mut domain [_c] {
        finddomain(family).unwrap_or(null_mut())
    }

    /// `struct protosw *pffindproto(int family, int type, int proto)`
    fn pffindproto(family: c_int, ty: c_int, proto: c_int) -> *mut protosw [_c] {
        findproto(family, ty, proto).unwrap_or(null_mut())
    }

    /// `int protosw_register(struct domain *, struct protosw *)`
    fn protosw_register(dp: *mut domain, pr: *mut protosw) -> c_int [c] {
        protosw_register_impl(dp, pr, c)
    }

    /// `int protosw_unregister(struct protosw *)`
    fn protosw_unregister(pr: *mut protosw) -> c_int [c] {
        protosw_unregister_impl(pr, c)
    }

    /// `void soisconnected(struct socket *so)`
    fn soisconnected(so: *mut socket) [c] {
        soisconnected_impl(so, c);
    }

    /// `void soisconnecting(struct socket *so)`
    fn soisconnecting(so: *mut socket) [c] {
        soisconnecting_impl(so, c);
    }

    /// `void soisdisconnected(struct socket *so)`
    fn soisdisconnected(so: *mut socket) [c] {
        soisdisconnected_impl(so, c);
    }

    /// `void soisdisconnecting(struct socket *so)`
    fn soisdisconnecting(so: *mut socket) [c] {
        soisdisconnecting_impl(so, c);
    }

    /// `struct sockaddr *sodupsockaddr(const struct sockaddr *sa, int mflags)`
    fn sodupsockaddr(sa: *const sockaddr, mflags: c_int) -> *mut sockaddr [c] {
        sodupsockaddr_impl(sa, mflags, c)
    }

    /// `void sorele_locked(struct socket *so)`
    fn sorele_locked(so: *mut socket) [c] {
        sorele_locked_impl(so, c);
    }

    /// `int sooptcopyin(struct sockopt *sopt, void *buf, size_t len, size_t minlen)`
    fn sooptcopyin(sopt: *mut sockopt, buf: *mut c_void, len: usize, minlen: usize) -> c_int [c] {
        sooptcopyin_impl(sopt, buf, len, minlen, c)
    }

    /// `int sooptcopyout(struct sockopt *sopt, const void *buf, size_t len)`
    fn sooptcopyout(sopt: *mut sockopt, buf: *const c_void, len: usize) -> c_int [c] {
        sooptcopyout_impl(sopt, buf, len, c)
    }
}

/// Exports the domain and socket-state functions, and hooks module unloads.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        crate::kern::loader::add_hook(|phase, info| {
            if phase == crate::kern::loader::Phase::Unloaded {
                module_unloaded(&info.filename, info.base, info.size);
            }
        });
    });
}

/// Helpers for tests written in Rust (a protocol family defined by the test).
pub mod testing {
    use super::*;

    /// Registers a domain as its module's DOMAIN_SET SYSINIT would.
    ///
    /// # Safety
    /// `dp` must point at a `struct domain` (and protosws) that stay valid
    /// and writable while registered.
    #[track_caller]
    pub unsafe fn domain_add(dp: *mut domain) {
        domain_add_impl(dp, Caller::here());
    }

    /// Unregisters a domain as its module's SYSUNINIT would.
    ///
    /// # Safety
    /// As for [`domain_add`].
    #[track_caller]
    pub unsafe fn domain_remove(dp: *mut domain) {
        domain_remove_impl(dp, Caller::here());
    }

    /// Reports a module image `[base, base+size)` as unloaded (what the
    /// loader hook does).
    pub fn module_unloaded(name: &str, base: usize, size: usize) {
        super::module_unloaded(name, base, size);
    }

    /// `soisconnected(so)` as a protocol calls it.
    #[track_caller]
    pub fn soisconnected(so: *mut socket) {
        soisconnected_impl(so, Caller::here());
    }

    /// `soisdisconnected(so)` as a protocol calls it.
    #[track_caller]
    pub fn soisdisconnected(so: *mut socket) {
        soisdisconnected_impl(so, Caller::here());
    }

    /// `sodupsockaddr(sa, mflags)`.
    ///
    /// # Safety
    /// `sa` must point at a readable sockaddr of `sa_len` bytes.
    #[track_caller]
    pub unsafe fn sodupsockaddr(sa: *const sockaddr, mflags: c_int) -> *mut sockaddr {
        sodupsockaddr_impl(sa, mflags, Caller::here())
    }

    /// `sorele_locked(so)` (socket lock held on entry).
    #[track_caller]
    pub fn sorele_locked(so: *mut socket) {
        sorele_locked_impl(so, Caller::here());
    }

    /// `mtx_lock`/`mtx_unlock` through the lock model (like module code).
    #[track_caller]
    pub fn mtx_lock(m: *mut mtx) {
        locks::mtx_lock(m);
    }

    /// See [`mtx_lock`].
    #[track_caller]
    pub fn mtx_unlock(m: *mut mtx) {
        locks::mtx_unlock(m);
    }

    /// `SOCK_RECVBUF_MTX(so)` / `SOCK_SENDBUF_MTX(so)`.
    pub fn buf_mtx(so: *mut socket, which: sb_which) -> *mut mtx {
        soeventmtx(so, which)
    }

    /// `SOCK_MTX(so)`.
    pub fn sock_mtx(so: *mut socket) -> *mut mtx {
        so_lock(so)
    }

    /// `&so->so_rcv` / `&so->so_snd`.
    pub fn buf(so: *mut socket, which: sb_which) -> *mut sockbuf {
        sobuf(so, which)
    }
}
