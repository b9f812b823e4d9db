//! Reading module memory safely: bounds-checked reads of the loaded image
//! (metadata, linker sets, strings) that report instead of faulting.

use super::*;

pub(super) fn image_of(id: i32) -> Option<(usize, usize)> {
    with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .map(|f| (f.base, f.size))
    })
}

/// Reads a `T` at `addr` if it lies entirely inside file `id`'s image.
pub(super) fn read_in<T: Copy>(id: i32, addr: usize) -> Option<T> {
    let (b, sz) = image_of(id)?;
    let len = std::mem::size_of::<T>();
    if addr < b || addr.checked_add(len)? > b + sz {
        return None;
    }
    // SAFETY: the range was checked to lie inside the live image.
    Some(unsafe { std::ptr::read_unaligned(addr as *const T) })
}

/// Reads a NUL-terminated string at `addr` inside file `id`'s image.
pub(super) fn cstr_in(id: i32, addr: usize) -> Option<String> {
    let (b, sz) = image_of(id)?;
    if addr < b || addr >= b + sz {
        return None;
    }
    // SAFETY: `addr..b+sz` is inside the live image.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, b + sz - addr) };
    let end = bytes.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Reads a NUL-terminated string anywhere in the low arena (module images,
/// exported data) — for pointers handed to exported functions.
pub(super) fn cstr_arena(addr: usize) -> Option<String> {
    if addr == 0 || !arena::contains(addr) {
        return None;
    }
    let end = arena::base() + arena::ARENA_SIZE;
    let max = (end - addr).min(4096);
    // SAFETY: `addr..addr+max` lies inside the arena mapping.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, max) };
    let n = bytes.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&bytes[..n]).into_owned())
}

/// The pointers of linker set `name` in file `id`.
pub(super) fn set_entries(id: i32, name: &str) -> Vec<usize> {
    let Some((start, stop)) = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.set_range(name))
    }) else {
        return Vec::new();
    };
    (start..stop)
        .step_by(8)
        .filter_map(|a| read_in::<u64>(id, a).map(|v| v as usize))
        .collect()
}

pub(super) enum Meta {
    Depend {
        name: String,
        min: i32,
        pref: i32,
        max: i32,
    },
    Version {
        name: String,
        version: i32,
    },
    Module {
        name: String,
        data: usize,
    },
    Other(i32),
}

pub(super) fn read_metadata(id: i32) -> Result<Vec<Meta>, String> {
    let mut v = Vec::new();
    for p in set_entries(id, "modmetadata_set") {
        let md: mod_metadata =
            read_in(id, p).ok_or(format!("modmetadata entry {p:#x} outside the image"))?;
        let cval = cstr_in(id, md.md_cval as usize).unwrap_or_default();
        let data = md.md_data as usize;
        v.push(match md.md_type {
            MDT_DEPEND => {
                let d: mod_depend =
                    read_in(id, data).ok_or(format!("MDT_DEPEND {cval}: bad data pointer"))?;
                Meta::Depend {
                    name: cval,
                    min: d.md_ver_minimum,
                    pref: d.md_ver_preferred,
                    max: d.md_ver_maximum,
                }
            }
            MDT_VERSION => {
                let d: mod_version =
                    read_in(id, data).ok_or(format!("MDT_VERSION {cval}: bad data pointer"))?;
                Meta::Version {
                    name: cval,
                    version: d.mv_version,
                }
            }
            MDT_MODULE => Meta::Module { name: cval, data },
            t => Meta::Other(t),
        });
    }
    Ok(v)
}
