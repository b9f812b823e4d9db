//! uma(9) for the mbuf zones (`uma_zalloc_arg` / `uma_zfree_arg` on
//! `zone_mbuf`, `zone_pack`, `zone_clust` and the jumbo zones).

use super::*;

pub(super) fn zone_name(z: Zone) -> &'static str {
    ZONES.iter().find(|t| t.0 == z).map(|t| t.2).unwrap_or("?")
}

pub(super) fn zalloc(zone: uma_zone_t, arg: *mut c_void, fl: c_int, c: Caller) -> *mut c_void {
    let Some(z) = with(|s| s.zone_of(zone)) else {
        violation(format!(
            "uma_zalloc_arg({zone:p}) from {c}: not a zone of the harness"
        ));
        return null_mut();
    };
    let w = wait_of(fl, "uma_zalloc_arg", c);
    match z {
        Zone::Mbuf | Zone::Pack => {
            if arg.is_null() {
                kernel_panic(&format!(
                    "uma_zalloc_arg({}) from {c}: NULL mb_args (page fault in mb_ctor)",
                    zone_name(z)
                ));
            }
            // SAFETY: the inline allocators pass a `struct mb_args`.
            let a = unsafe { *arg.cast::<mb_args>() };
            let fl = a.flags as u32;
            if fl & M_NOFREE != 0 {
                violation(format!(
                    "uma_zalloc_arg({}) from {c}: M_NOFREE in mb_args",
                    zone_name(z)
                ));
            }
            let ty = (a.type_ as i32 as u32) & 0xffff;
            if z == Zone::Mbuf {
                zalloc_mbuf(
                    w,
                    if ty == MT_NOINIT {
                        MT_NOINIT
                    } else {
                        ty & 0xff
                    },
                    fl,
                    c,
                )
                .cast()
            } else {
                zalloc_pack(w, ty & 0xff, fl, c).cast()
            }
        }
        _ => {
            let m = arg.cast::<mbuf>();
            if !m.is_null() && !check_live(m, "uma_zalloc_arg(cluster)", c, Use::Access) {
                return null_mut();
            }
            zalloc_cluster(z, w, m, c).cast()
        }
    }
}

pub(super) fn zfree(zone: uma_zone_t, item: *mut c_void, c: Caller) {
    if item.is_null() {
        return;
    }
    let Some(z) = with(|s| s.zone_of(zone)) else {
        violation(format!(
            "uma_zfree_arg({zone:p}, {item:p}) from {c}: not a zone of the harness"
        ));
        return;
    };
    match z {
        Zone::Mbuf => zfree_mbuf(item.cast(), c),
        Zone::Pack => {
            let m = item.cast::<mbuf>();
            if !check_live(m, "uma_zfree(zone_pack)", c, Use::Free) {
                return;
            }
            // SAFETY: `m` is live.
            unsafe {
                if flags(m) & M_EXT == 0 || ext_type(m) != EXT_PACKET {
                    violation(format!(
                        "uma_zfree(zone_pack, {m:p}) from {c}: not an EXT_PACKET mbuf"
                    ));
                    return;
                }
                if flags(m) & M_PKTHDR != 0 {
                    tag_delete_chain(m, null_mut(), c);
                }
                free_cluster(ext_buf(m), "uma_zfree(zone_pack)", c);
            }
            retire_mbuf(m, c, false);
        }
        _ => free_cluster(item.cast(), "uma_zfree_arg(cluster zone)", c),
    }
}
