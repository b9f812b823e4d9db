//! Loading: dependencies (`linker_load_dependencies`), then the whole
//! `kldload` sequence (link, register modules, run SYSINITs).

use super::*;

pub(super) fn load_dependencies(id: i32) -> Result<(), i32> {
    let (filename, path) = with(|s| {
        let f = s
            .files
            .iter()
            .find(|f| f.id == id)
            .expect("file being loaded");
        (f.filename.clone(), f.pathname.display().to_string())
    });
    let meta = read_metadata(id).map_err(|m| {
        kmsg(format!("kldload: {path}: bad module metadata: {m}"));
        ENOEXEC
    })?;
    for m in &meta {
        if let Meta::Other(t) = m {
            trace(format!("{filename}: module metadata of type {t} ignored"));
        }
        if let Meta::Version { name, version } = m {
            let clash = with(|s| {
                s.found
                    .iter()
                    .find(|f| f.name == *name && f.version == *version)
                    .map(|f| match f.container {
                        Some(c) => s
                            .files
                            .iter()
                            .find(|x| x.id == c)
                            .map_or("?".into(), |x| x.filename.clone()),
                        None => "kernel".into(),
                    })
            });
            if let Some(c) = clash {
                kmsg(format!(
                    "interface {name}.{version} already present in the KLD '{c}'!"
                ));
                return Err(EEXIST);
            }
        }
    }
    for m in &meta {
        let Meta::Depend {
            name,
            min,
            pref,
            max,
        } = m
        else {
            continue;
        };
        let own = meta
            .iter()
            .any(|x| matches!(x, Meta::Version { name: n, .. } if n == name));
        if own {
            continue; // a self reference
        }
        let verinfo = Some((*min, *pref, *max));
        let have = with(|s| modlist_lookup2(s, name, verinfo).map(|i| s.found[i].container));
        let result = match have {
            Some(container) => {
                trace(format!(
                    "MDT_DEPEND  {name:<10} min={min} pref={pref} max={max} -> ok"
                ));
                if let Some(c) = container {
                    with(|s| {
                        if let Some(f) = s.files.iter_mut().find(|f| f.id == c) {
                            f.refs += 1;
                        }
                        if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                            f.deps.push(c);
                        }
                    });
                }
                Ok(())
            }
            None => {
                trace(format!(
                    "MDT_DEPEND  {name:<10} min={min} pref={pref} max={max} -> not loaded"
                ));
                load_module(None, Some(name), Some(id), verinfo).map(|_| ())
            }
        };
        if let Err(e) = result {
            kmsg(format!(
                "KLD {filename}: depends on {name} - not available or version mismatch"
            ));
            return Err(e);
        }
    }
    // linker_addmodules: this file now provides its MDT_VERSIONs.
    for m in &meta {
        if let Meta::Version { name, version } = m {
            trace(format!("MDT_VERSION {name} {version}"));
            with(|s| {
                s.found.push(FoundModule {
                    name: name.clone(),
                    version: *version,
                    container: Some(id),
                })
            });
        }
    }
    Ok(())
}

pub(super) fn write_gdb_script(id: i32) {
    let Some(info) = file_info(id) else { return };
    let abs = std::fs::canonicalize(&info.pathname).unwrap_or_else(|_| info.pathname.clone());
    let text = info
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .or_else(|| info.sections.iter().find(|s| s.exec));
    let mut cmd = format!("add-symbol-file {}", abs.display());
    if let Some(t) = text {
        cmd.push_str(&format!(" {:#x}", t.addr));
    }
    for s in &info.sections {
        if Some(s.index) == text.map(|t| t.index) || s.name.starts_with("<<") {
            continue;
        }
        cmd.push_str(&format!(" -s {} {:#x}", s.name, s.addr));
    }
    let script = format!(
        "# ngharness: {} loaded at {:#x} ({} bytes)\n{cmd}\n",
        info.filename, info.base, info.size
    );
    let mut out = info.pathname.clone().into_os_string();
    out.push(".gdb");
    let out = PathBuf::from(out);
    match std::fs::write(&out, script) {
        Ok(()) => trace(format!("gdb script {}", out.display())),
        Err(e) => eprintln!("harness: cannot write gdb script {}: {e}", out.display()),
    }
}

/// link_elf_load_file: place, local relocations, dependencies, global
/// relocations, ctors. On error the half-loaded file is unloaded.
pub(super) fn link_elf_load_file(path: &Path) -> Result<i32, i32> {
    let mut link = place(path)?;
    let id = link.id;
    let mut stats = RelocStats::default();
    let r = (|| {
        relocate(&mut link, true, &mut stats)?;
        load_dependencies(id)?;
        relocate(&mut link, false, &mut stats)?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
        return Err(e);
    }
    let size = with(|s| s.files.iter().find(|f| f.id == id).map_or(0, |f| f.size));
    let c = stats.counts;
    trace(format!(
        "linked {} at {:#x} ({size} bytes); relocs: 64={} PC32={} PLT32={} 32S={} NONE={}; new stubs={}",
        basename(&link.path),
        link.base,
        c[1],
        c[2],
        c[3],
        c[4],
        c[0],
        stats.new_stubs
    ));
    if std::env::var_os("NGHARNESS_GDB").is_some_and(|v| !v.is_empty()) {
        write_gdb_script(id);
    }
    // .ctors (FreeBSD runs them; C and Rust modules should not have any).
    let ctors = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.sections.iter().find(|x| x.name == ".ctors").cloned())
    });
    if let Some(c) = ctors {
        for a in (c.addr..c.addr + c.size).step_by(8) {
            let Some(fp) = read_in::<u64>(id, a) else {
                continue;
            };
            if fp != 0 {
                trace(format!("ctor {}", describe(fp as usize)));
                // SAFETY: a relocated constructor pointer of the module,
                // called with no arguments as the kernel does.
                let f: unsafe extern "C" fn() = unsafe { std::mem::transmute(fp as usize) };
                // SAFETY: calling module code; the module's contract.
                unsafe { f() };
            }
        }
    }
    Ok(id)
}

pub(super) fn module_register(
    name: &str,
    handler: usize,
    arg: usize,
    file: i32,
) -> Result<i32, i32> {
    with(|s| {
        if s.modules.iter().any(|m| m.name == name) {
            return Err(EEXIST);
        }
        let id = s.next_mod_id;
        s.next_mod_id += 1;
        // The opaque `struct module` the handler receives.
        let handle = arena::alloc(64, 16) as usize;
        s.modules.push(Module {
            id,
            name: name.into(),
            handler,
            arg,
            file: Some(file),
            handle,
        });
        if let Some(f) = s.files.iter_mut().find(|f| f.id == file) {
            f.modules.push(id);
            f.had_modules = true;
        }
        Ok(id)
    })
}

pub(super) fn register_modules(id: i32) -> Result<(), i32> {
    let meta = read_metadata(id).unwrap_or_default();
    let mut first = 0;
    for m in meta {
        let Meta::Module { name: cval, data } = m else {
            continue;
        };
        let Some(md) = read_in::<moduledata>(id, data) else {
            violation(format!(
                "MDT_MODULE {cval}: moduledata pointer {data:#x} outside the module"
            ));
            continue;
        };
        let name = cstr_in(id, md.name as usize).unwrap_or(cval);
        let handler = md.evhand.map_or(0, |f| f as usize);
        let arg = md.priv_ as usize;
        trace(format!(
            "MDT_MODULE  {name} handler={} arg={}",
            describe(handler),
            describe(arg)
        ));
        if let Err(e) = module_register(&name, handler, arg, id) {
            kmsg(format!("module_register: module {name} already exists!"));
            kmsg(format!("Module {name} failed to register: {e}"));
            if first == 0 {
                first = e;
            }
        }
    }
    if first != 0 {
        Err(first)
    } else {
        Ok(())
    }
}

pub(super) fn sysinits(id: i32, uninit: bool) -> Vec<(u32, u32, usize, usize)> {
    let set = if uninit {
        "sysuninit_set"
    } else {
        "sysinit_set"
    };
    let mut v = Vec::new();
    for p in set_entries(id, set) {
        match read_in::<sysinit>(id, p) {
            Some(si) => v.push((
                si.subsystem,
                si.order,
                si.func.map_or(0, |f| f as usize),
                si.udata as usize,
            )),
            None => violation(format!("{set} entry {p:#x} does not point into the module")),
        }
    }
    if uninit {
        v.sort_by_key(|a| std::cmp::Reverse((a.0, a.1)));
    } else {
        v.sort_by_key(|a| (a.0, a.1));
    }
    v
}

pub(super) fn run_sysinits(id: i32, uninit: bool) {
    let what = if uninit { "sysuninit" } else { "sysinit" };
    for (sub, order, func, udata) in sysinits(id, uninit) {
        if sub == fbsd_sys::SI_SUB_DUMMY {
            continue;
        }
        trace(format!(
            "{what} sub={sub:#x} order={order:#x} func={} udata={}",
            describe(func),
            describe(udata)
        ));
        if func == 0 {
            violation(format!(
                "{what} with a NULL function (sub {sub:#x} order {order:#x})"
            ));
            continue;
        }
        // SAFETY: a relocated `sysinit_cfunc_t` of the module (or a stub to
        // a harness function), called with its `udata` like the kernel does.
        let f: unsafe extern "C" fn(*const c_void) = unsafe { std::mem::transmute(func) };
        // SAFETY: calling module code with the argument it registered.
        unsafe { f(udata as *const c_void) };
    }
}

/// linker_load_file: link, register modules, SYSINITs.
pub(super) fn linker_load_file(path: &Path) -> Result<i32, i32> {
    let filename = basename(&path.display().to_string()).to_string();
    let existing = with(|s| {
        let id = find_file_by_name(s, &filename).map(|f| f.id)?;
        let f = s.files.iter_mut().find(|f| f.id == id)?;
        f.refs += 1;
        Some(id)
    });
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = link_elf_load_file(path)?;
    if let Err(e) = register_modules(id) {
        if e == EEXIST {
            let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
            return Err(e);
        }
    }
    let info = file_info(id).expect("file just linked");
    run_hooks(Phase::Linked, &info);
    run_sysinits(id, false);
    let failed_all = with(|s| {
        let f = s
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .expect("file just linked");
        f.linked = true;
        f.had_modules && f.modules.is_empty()
    });
    if failed_all {
        trace(format!(
            "{}: every module failed to load; unloading",
            info.filename
        ));
        let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
        return Err(ENOEXEC);
    }
    run_hooks(Phase::Loaded, &info);
    Ok(id)
}

/// linker_load_module: find the file for a file name or module name and load it.
pub(super) fn load_module(
    kldname: Option<&str>,
    modname: Option<&str>,
    parent: Option<i32>,
    verinfo: Option<(i32, i32, i32)>,
) -> Result<i32, i32> {
    let pathname = match modname {
        None => search_kld(kldname.expect("kldname or modname")),
        Some(m) => {
            if with(|s| modlist_lookup2(s, m, verinfo).is_some()) {
                return Err(EEXIST);
            }
            match kldname {
                Some(k) => Some(PathBuf::from(k)),
                None => search_module(m),
            }
        }
    };
    let Some(pathname) = pathname else {
        return Err(ENOENT);
    };
    let filename = basename(&pathname.display().to_string()).to_string();
    if with(|s| find_file_by_name(s, &filename).is_some()) {
        return Err(EEXIST);
    }
    let id = linker_load_file(&pathname)?;
    if let (Some(m), Some(_)) = (modname, verinfo) {
        if with(|s| modlist_lookup2(s, m, verinfo).is_none()) {
            let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
            return Err(ENOENT);
        }
    }
    if let Some(p) = parent {
        with(|s| {
            if let Some(f) = s.files.iter_mut().find(|f| f.id == p) {
                f.deps.push(id);
            }
        });
    }
    Ok(id)
}

pub(super) fn begin_op() {
    with(|s| {
        if s.depth == 0 {
            s.messages.clear();
            s.missing.clear();
        }
        s.depth += 1;
    });
}

pub(super) fn end_op(errno: i32) -> LoadError {
    with(|s| {
        s.depth -= 1;
        let (messages, missing) = if s.depth == 0 {
            (
                std::mem::take(&mut s.messages),
                std::mem::take(&mut s.missing),
            )
        } else {
            (s.messages.clone(), s.missing.clone())
        };
        LoadError {
            errno,
            messages,
            missing,
        }
    })
}

/// Runs `f` with `curvnet` set to the current thread's prison vnet
/// (`CURVNET_SET(TD_TO_VNET(td))` in kern_kldload/kern_kldunload).
pub(super) fn with_td_vnet<R>(f: impl FnOnce() -> R) -> R {
    let td = kthread::curthread();
    // SAFETY: curthread, its credential and the credential's prison are live
    // harness objects (never freed).
    let v = unsafe {
        let cr = (*td).td_ucred;
        if cr.is_null() || (*cr).cr_prison.is_null() {
            kthread::vnet0()
        } else {
            (*(*cr).cr_prison).pr_vnet
        }
    };
    let old = kthread::set_curvnet(v);
    let r = f();
    kthread::set_curvnet(old);
    r
}

/// `kldload(2)` without the privilege check: `name` is a path (contains `/`),
/// a file name (contains `.`, looked up on the module path) or a module name
/// (looked up on the module path as `name` or `name.ko`). Returns the file id.
/// EEXIST if the module or file is already loaded, ENOENT if not found.
pub fn kldload(name: &str) -> Result<i32, LoadError> {
    begin_op();
    let r = with_td_vnet(|| {
        let (kld, modn) = if name.contains('/') || name.contains('.') {
            (Some(name), None)
        } else {
            (None, Some(name))
        };
        load_module(kld, modn, None, None)
    });
    match r {
        Ok(id) => {
            let _ = end_op(0);
            with(|s| {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                    f.userrefs += 1;
                }
            });
            Ok(id)
        }
        Err(e) => Err(end_op(e)),
    }
}

/// Loads the `.ko` at `path` (a `kldload ./x.ko`). Returns the file id.
pub fn load(path: &Path) -> Result<i32, LoadError> {
    let s = path.display().to_string();
    if s.contains('/') {
        kldload(&s)
    } else {
        kldload(&format!("./{s}"))
    }
}
