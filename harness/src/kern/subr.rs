//! kern_subr.c: `hashinit`, `hashinit_flags`, `hashdestroy`.
//!
//! A hash table is an array of `LIST_HEAD`s (one pointer each) allocated with
//! the caller's malloc type; its size is the largest power of two not above
//! the requested element count, and the mask is that size minus one. As in
//! an INVARIANTS kernel, destroying a table with an entry left in a bucket
//! is reported (the entries would leak), and exactly one of `HASH_WAITOK`
//! and `HASH_NOWAIT` must be given.

use std::ffi::{c_int, c_ulong, c_void};

use fbsd_sys::{malloc_type, u_long, HASH_NOWAIT, HASH_WAITOK, M_NOWAIT, M_WAITOK};

use super::entry::kernel_functions;
use super::fault::Caller;
use super::malloc::{alloc, release, type_name};
use super::violation;
use crate::exports::Exports;

const HEAD: usize = std::mem::size_of::<*mut c_void>();

/// The table size for `elements` (a power of two, at least 1).
pub fn table_size(elements: c_int) -> usize {
    let mut size: usize = 1;
    while size <= elements.max(0) as usize {
        size <<= 1;
    }
    (size >> 1).max(1)
}

fn init(
    elements: c_int,
    ty: *mut malloc_type,
    mask: *mut u_long,
    flags: c_int,
    c: Caller,
    what: &str,
) -> *mut c_void {
    if elements <= 0 {
        violation(format!("{what}({elements}) from {c}: bad elements"));
    }
    let (w, n) = (flags & HASH_WAITOK as c_int, flags & HASH_NOWAIT as c_int);
    if (w != 0) == (n != 0) {
        violation(format!(
            "{what}(flags {flags:#x}) from {c}: exactly one of HASH_WAITOK and HASH_NOWAIT"
        ));
    }
    let size = table_size(elements);
    let mflags = if n != 0 { M_NOWAIT } else { M_WAITOK } as c_int;
    let p = alloc(size * HEAD, ty, mflags, HEAD, c, None, what);
    if !p.is_null() {
        // SAFETY: a fresh block of `size` list heads; `mask` is the caller's.
        unsafe {
            std::ptr::write_bytes(p, 0, size * HEAD);
            *mask = (size - 1) as u_long;
        }
    }
    p.cast()
}

kernel_functions! {
    /// `void *hashinit(int count, struct malloc_type *type, u_long *hashmask)`
    fn hashinit(count: c_int, ty: *mut malloc_type, hashmask: *mut u_long) -> *mut c_void [c] {
        init(count, ty, hashmask, HASH_WAITOK as c_int, c, "hashinit")
    }

    /// `void *hashinit_flags(int count, struct malloc_type *type, u_long *hashmask, int flags)`
    fn hashinit_flags(
        count: c_int,
        ty: *mut malloc_type,
        hashmask: *mut u_long,
        flags: c_int,
    ) -> *mut c_void [c] {
        init(count, ty, hashmask, flags, c, "hashinit_flags")
    }

    /// `void hashdestroy(void *hashtbl, struct malloc_type *type, u_long hashmask)`
    fn hashdestroy(tbl: *mut c_void, ty: *mut malloc_type, hashmask: u_long) [c] {
        if !tbl.is_null() {
            let heads = (hashmask as c_ulong as usize).saturating_add(1);
            // SAFETY: a table from hashinit has hashmask + 1 heads.
            let used = (0..heads)
                .filter(|&i| unsafe { !(*tbl.cast::<*mut c_void>().add(i)).is_null() })
                .count();
            if used > 0 {
                violation(format!(
                    "hashdestroy({tbl:p}) from {c}: {used} bucket(s) not empty (malloc type {})",
                    type_name(ty)
                ));
            }
        }
        release(tbl, ty, c, "hashdestroy", false);
    }
}

/// Exports the functions of this file.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_two_not_above_the_count() {
        assert_eq!(table_size(1), 1);
        assert_eq!(table_size(2), 2);
        assert_eq!(table_size(3), 2);
        assert_eq!(table_size(16), 16);
        assert_eq!(table_size(17), 16);
        assert_eq!(table_size(32), 32);
    }
}
