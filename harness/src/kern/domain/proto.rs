//! Domains and protocol switches: `domain_add`/`domain_remove`,
//! `protosw_register`/`protosw_unregister`, `pffinddomain`/`pffindproto`, and
//! the methods `pr_init` fills in.

use super::*;

pub(super) fn cstr_lossy(p: *const core::ffi::c_char) -> String {
    if p.is_null() {
        "(null)".into()
    } else {
        // SAFETY: the module's domain name is a NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `dom_protosw[i]` pointers of `dp`.
///
/// # Safety
/// `dp` must point at a readable `struct domain` with `dom_nprotosw` slots.
pub(super) unsafe fn protosws(dp: *mut domain) -> Vec<*mut protosw> {
    // SAFETY: per the function contract.
    unsafe {
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_ptr();
        (0..n).map(|i| *base.add(i)).collect()
    }
}

/// `pr_init()`: links the protosw to its domain and installs the defaults for
/// NULL methods. The kernel writes into the module's protosw, which therefore
/// has to stay valid (and writable) while registered.
pub(super) fn pr_init(dp: *mut domain, pr: *mut protosw, c: Caller) {
    use self::syscalls::defaults as d;
    // SAFETY: `pr` is a protosw the module registers; the kernel writes it.
    unsafe {
        if (*pr).pr_attach.is_none() {
            violation(format!(
                "pr_init from {c}: protocol (type {}, protocol {}) of domain {} has no pr_attach \
                 (KASSERT \"protocol doesn't have pr_attach\")",
                (*pr).pr_type,
                (*pr).pr_protocol,
                cstr_lossy((*dp).dom_name)
            ));
        }
        (*pr).pr_domain = dp;
        macro_rules! dflt {
            ($f:ident, $v:expr) => {
                if (*pr).$f.is_none() {
                    (*pr).$f = Some($v);
                }
            };
        }
        dflt!(pr_sosend, d::sosend_generic);
        dflt!(pr_soreceive, d::soreceive_generic);
        dflt!(pr_sopoll, d::sopoll_generic);
        dflt!(pr_setsbopt, d::sbsetopt_default);
        dflt!(pr_accept, d::pr_accept_notsupp);
        dflt!(pr_aio_queue, d::pr_aio_queue_notsupp);
        dflt!(pr_bind, d::pr_bind_notsupp);
        dflt!(pr_bindat, d::pr_bindat_notsupp);
        dflt!(pr_connect, d::pr_connect_notsupp);
        dflt!(pr_connect2, d::pr_connect2_notsupp);
        dflt!(pr_connectat, d::pr_connectat_notsupp);
        dflt!(pr_control, d::pr_control_notsupp);
        dflt!(pr_disconnect, d::pr_disconnect_notsupp);
        dflt!(pr_listen, d::pr_listen_notsupp);
        dflt!(pr_peeraddr, d::pr_peeraddr_notsupp);
        dflt!(pr_rcvd, d::pr_rcvd_notsupp);
        dflt!(pr_rcvoob, d::pr_rcvoob_notsupp);
        dflt!(pr_send, d::pr_send_notsupp);
        dflt!(pr_shutdown, d::pr_shutdown_notsupp);
        dflt!(pr_sockaddr, d::pr_sockaddr_notsupp);
        dflt!(pr_ready, d::pr_ready_notsupp);
    }
}

pub(super) fn domain_add_impl(dp: *mut domain, c: Caller) {
    if dp.is_null() {
        kernel_panic(&format!(
            "domain_add(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    let v = crate::kern::thread::curvnet();
    if !v.is_null() && v != crate::kern::thread::vnet0() {
        violation(format!(
            "domain_add({dp:p}) from {c}: curvnet {v:p} is not the default vnet (MPASS)"
        ));
    }
    // SAFETY: DOMAIN_SET hands the module's writable `struct domain`.
    let (family, name, probe) = unsafe {
        (
            (*dp).dom_family,
            cstr_lossy((*dp).dom_name),
            (*dp).dom_probe,
        )
    };
    if with(|s| s.domains.iter().any(|d| d.ptr == dp as usize)) {
        violation(format!(
            "domain_add({name}) from {c}: domain {dp:p} is already registered"
        ));
        return;
    }
    if let Some(probe) = probe {
        // SAFETY: the module's probe function, `int (*)(void)`.
        let r = unsafe { probe() };
        if r != 0 {
            eprintln!("harness: domain_add: dom_probe of domain {name} (family {family}) returned {r}; not added");
            return;
        }
    }
    // SAFETY: as above; dom_protosw has dom_nprotosw slots.
    for pr in unsafe { protosws(dp) } {
        if !pr.is_null() {
            pr_init(dp, pr, c);
        }
    }
    let dup = with(|s| s.domains.iter().find(|d| d.family == family).cloned());
    if let Some(d) = dup {
        violation(format!(
            "domain_add({name}) from {c}: family {family} is already registered by domain {} \
             (INVARIANTS: MPASS(tmp->dom_family != dp->dom_family))",
            d.name
        ));
    }
    let head = with(|s| s.domains.first().map_or(0, |d| d.ptr));
    // SAFETY: the kernel links the domain into its SLIST through `dom_next`.
    unsafe { (*dp).dom_next.sle_next = head as *mut domain };
    with(|s| {
        s.domains.insert(
            0,
            Dom {
                ptr: dp as usize,
                family,
                name,
            },
        )
    });
}

pub(super) fn domain_remove_impl(dp: *mut domain, c: Caller) {
    if dp.is_null() {
        kernel_panic(&format!(
            "domain_remove(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    // SAFETY: SYSUNINIT hands the module's domain, still mapped.
    let flags = unsafe { (*dp).dom_flags };
    if flags & fbsd_sys::DOMF_UNLOADABLE as c_int == 0 {
        return;
    }
    let Some(d) = with(|s| {
        let i = s.domains.iter().position(|d| d.ptr == dp as usize)?;
        Some(s.domains.remove(i))
    }) else {
        violation(format!(
            "domain_remove({dp:p}) from {c}: domain is not registered"
        ));
        return;
    };
    relink_domains();
    let live = with(|s| {
        s.sockets
            .values()
            .filter(|k| k.family == d.family && !k.dead)
            .count()
    });
    if live > 0 {
        violation(format!(
            "domain_remove({}) from {c}: {live} socket(s) of the domain are still open; their so_proto \
             would dangle once the module is unloaded",
            d.name
        ));
    }
}

/// Rewrites the `dom_next` links of the registered domains.
pub(super) fn relink_domains() {
    let ptrs: Vec<usize> = with(|s| s.domains.iter().map(|d| d.ptr).collect());
    for (i, &p) in ptrs.iter().enumerate() {
        let next = ptrs.get(i + 1).copied().unwrap_or(0);
        // SAFETY: registered domains are live module memory.
        unsafe { (*(p as *mut domain)).dom_next.sle_next = next as *mut domain };
    }
}

/// `pffinddomain(family)`.
pub(crate) fn finddomain(family: c_int) -> Option<*mut domain> {
    with(|s| {
        s.domains
            .iter()
            .find(|d| d.family == family)
            .map(|d| d.ptr as *mut domain)
    })
}

/// `pffindproto(family, type, proto)`: the first protosw of the domain with
/// that type whose protocol is 0 or `proto`, or any if `proto` is 0.
pub(crate) fn findproto(family: c_int, ty: c_int, proto: c_int) -> Option<*mut protosw> {
    let dp = finddomain(family)?;
    // SAFETY: registered domains and their protosws are live module memory.
    unsafe {
        protosws(dp).into_iter().find(|&pr| {
            !pr.is_null()
                && i32::from((*pr).pr_type) == ty
                && ((*pr).pr_protocol == 0 || proto == 0 || i32::from((*pr).pr_protocol) == proto)
        })
    }
}

pub(super) fn protosw_register_impl(dp: *mut domain, npr: *mut protosw, c: Caller) -> c_int {
    if dp.is_null() || npr.is_null() {
        violation(format!(
            "protosw_register({dp:p}, {npr:p}) from {c}: NULL argument (MPASS)"
        ));
        return EINVAL;
    }
    // SAFETY: the module's domain and protosw.
    unsafe {
        if (*npr).pr_type <= 0 || (*npr).pr_protocol <= 0 {
            violation(format!(
                "protosw_register from {c}: pr_type {} / pr_protocol {} must be positive (MPASS)",
                (*npr).pr_type,
                (*npr).pr_protocol
            ));
        }
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_mut_ptr();
        let mut slot = None;
        for i in 0..n {
            let p = *base.add(i);
            if p.is_null() {
                slot.get_or_insert(i);
            } else if (*p).pr_type == (*npr).pr_type && (*p).pr_protocol == (*npr).pr_protocol {
                return EEXIST;
            }
        }
        let Some(i) = slot else { return ENOMEM };
        pr_init(dp, npr, c);
        *base.add(i) = npr;
    }
    0
}

pub(super) fn protosw_unregister_impl(pr: *mut protosw, c: Caller) -> c_int {
    if pr.is_null() {
        violation(format!("protosw_unregister(NULL) from {c}"));
        return EINVAL;
    }
    // SAFETY: the module's protosw, linked by pr_init.
    unsafe {
        let dp = (*pr).pr_domain;
        if dp.is_null() {
            return fbsd_sys::EPROTONOSUPPORT as c_int;
        }
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_mut_ptr();
        let Some(i) = (0..n).find(|&i| *base.add(i) == pr) else {
            return fbsd_sys::EPROTONOSUPPORT as c_int;
        };
        *base.add(i) = null_mut();
    }
    let live = with(|s| {
        s.sockets
            .keys()
            .filter(|&&so| unsafe_proto(so) == pr as usize)
            .count()
    });
    if live > 0 {
        violation(format!(
            "protosw_unregister({pr:p}) from {c}: {live} socket(s) of this protocol are still open"
        ));
    }
    0
}

pub(super) fn unsafe_proto(so: usize) -> usize {
    // SAFETY: keys of the socket table are live harness sockets.
    unsafe { (*(so as *mut socket)).so_proto as usize }
}

/// Loader hook: a module image went away. Any domain still registered from
/// it, and any socket whose protocol lived there, now points into unmapped
/// memory: report it and make sure the socket layer never follows them.
pub(super) fn module_unloaded(name: &str, base: usize, size: usize) {
    let inside = |p: usize| p >= base && p < base + size;
    let gone: Vec<Dom> = with(|s| {
        let (gone, keep): (Vec<Dom>, Vec<Dom>) = s.domains.drain(..).partition(|d| inside(d.ptr));
        s.domains = keep;
        gone
    });
    if !gone.is_empty() {
        relink_domains();
    }
    for d in &gone {
        violation(format!(
            "{name} was unloaded while its domain \"{}\" (family {}) is still registered (no \
             DOMF_UNLOADABLE, or domain_remove did not run): the kernel would call into unmapped memory",
            d.name, d.family
        ));
    }
    let dead: Vec<(u64, Option<Fd>)> = with(|s| {
        let mut v = Vec::new();
        for (&so, k) in s.sockets.iter_mut() {
            if !k.dead && (inside(unsafe_proto(so)) || gone.iter().any(|d| d.family == k.family)) {
                k.dead = true;
                v.push((k.serial, k.fd));
            }
        }
        v
    });
    for (serial, fd) in dead {
        violation(format!(
            "{name} was unloaded with socket #{serial} (fd {fd:?}) still open: its so_proto points into \
             the unloaded image"
        ));
    }
}
