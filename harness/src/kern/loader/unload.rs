//! Unloading (`kldunload`): quiesce, unload, SYSUNINITs, releasing the
//! dependencies and unmapping the image.

use super::*;

pub(super) fn protect_image(base: usize, size: usize) {
    // SAFETY: `base..base+size` is this file's page-aligned image inside the
    // arena mapping; nothing of the harness lives there. Making it
    // inaccessible turns a call into unloaded code into a fault.
    let r = unsafe { libc::mprotect(base as *mut c_void, size, libc::PROT_NONE) };
    if r != 0 {
        eprintln!("harness: mprotect of unloaded image {base:#x} failed");
    }
}

/// linker_file_unload.
pub(super) fn linker_file_unload(id: i32, flags: i32) -> Result<(), i32> {
    let Some((refs, modules, filename)) = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .map(|f| (f.refs, f.modules.clone(), f.filename.clone()))
    }) else {
        return Err(ENOENT);
    };
    if refs > 1 {
        with(|s| {
            if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                f.refs -= 1;
            }
        });
        return Ok(());
    }
    // Quiesce all modules; any of them may veto.
    for &m in &modules {
        let mut e = call_handler(m, MOD_QUIESCE);
        trace(format!("MOD_QUIESCE({}) -> {e}", mod_name(m)));
        if e == EOPNOTSUPP || e == EINVAL {
            e = 0;
        }
        if e != 0 && flags != LINKER_UNLOAD_FORCE {
            return Err(e);
        }
    }
    for &m in &modules {
        let e = call_handler(m, MOD_UNLOAD);
        trace(format!("MOD_UNLOAD({}) -> {e}", mod_name(m)));
        if e != 0 {
            return Err(e);
        }
        module_release(m);
    }
    let (linked, info) = with(|s| {
        s.found.retain(|m| m.container != Some(id));
        let f = s
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .expect("file being unloaded");
        let linked = f.linked;
        f.linked = false;
        (linked, f.info())
    });
    if linked {
        run_hooks(Phase::Unloading, &info);
        run_sysinits(id, true);
    }
    let f = with(|s| {
        let pos = s
            .files
            .iter()
            .position(|f| f.id == id)
            .expect("file being unloaded");
        s.files.remove(pos)
    });
    for d in &f.deps {
        let _ = linker_file_unload(*d, flags);
    }
    protect_image(f.base, f.size);
    with(|s| {
        s.unloaded.push(UnloadedFile {
            filename: f.filename.clone(),
            base: f.base,
            size: f.size,
            sections: f.sections,
            symbols: f.symbols,
        })
    });
    trace(format!("unloaded {filename}"));
    if linked {
        run_hooks(Phase::Unloaded, &info);
    }
    Ok(())
}

/// `kldunload(2)` without the privilege check: unloads file `id`
/// (`flags`: [`LINKER_UNLOAD_NORMAL`] or [`LINKER_UNLOAD_FORCE`]). EBUSY if a
/// module refuses (the file stays loaded), ENOENT if no such file.
pub fn kldunload(id: i32, flags: i32) -> Result<(), i32> {
    with_td_vnet(|| {
        let userrefs = with(|s| {
            s.files
                .iter()
                .find(|f| f.id == id && f.linked)
                .map(|f| f.userrefs)
        });
        let Some(userrefs) = userrefs else {
            return Err(ENOENT);
        };
        if userrefs == 0 {
            kprint("kldunload: attempt to unload file that was loaded by the kernel");
            return Err(EBUSY);
        }
        let set = |d: i32| {
            with(|s| {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                    f.userrefs += d;
                }
            })
        };
        set(-1);
        let r = linker_file_unload(id, flags);
        if r.is_err() {
            set(1);
        }
        r
    })
}

/// Unloads file `id` normally (see [`kldunload`]).
pub fn unload(id: i32) -> Result<(), i32> {
    kldunload(id, LINKER_UNLOAD_NORMAL)
}
