//! Linking a file: name resolution against the module, the harness exports
//! and the dependencies; jump stubs; placing sections and applying
//! relocations (`link_elf_load_file`).

use super::*;

pub(super) fn basename(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) if i + 1 < p.len() => &p[i + 1..],
        _ => p,
    }
}

pub(super) fn find_file_by_name<'a>(s: &'a State, filename: &str) -> Option<&'a LinkerFile> {
    let ko = format!("{filename}.ko");
    s.files
        .iter()
        .find(|f| f.filename == ko || f.filename == filename)
}

/// `modlist_lookup2`: the preferred version, else the highest in range.
pub(super) fn modlist_lookup2(
    s: &State,
    name: &str,
    ver: Option<(i32, i32, i32)>,
) -> Option<usize> {
    let Some((min, pref, max)) = ver else {
        return s.found.iter().position(|m| m.name == name);
    };
    let mut best: Option<usize> = None;
    for (i, m) in s.found.iter().enumerate() {
        if m.name != name {
            continue;
        }
        if m.version == pref {
            return Some(i);
        }
        if m.version >= min
            && m.version <= max
            && best.is_none_or(|b| m.version > s.found[b].version)
        {
            best = Some(i);
        }
    }
    best
}

pub(super) fn lookup_file_in(dir: &Path, name: &str) -> Option<PathBuf> {
    for ext in ["", ".ko"] {
        let p = dir.join(format!("{name}{ext}"));
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

pub(super) fn search_kld(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = module_path();
    path.iter().find_map(|d| lookup_file_in(d, name))
}

pub(super) fn search_module(modname: &str) -> Option<PathBuf> {
    // No linker.hints: the "kldname[.ko]" fallback of linker_hints_lookup.
    let path = module_path();
    path.iter().find_map(|d| lookup_file_in(d, modname))
}

pub(super) fn stub_for(s: &mut State, name: &str, target: usize) -> (usize, bool) {
    if let Some(&a) = s.stubs.get(name) {
        return (a, false);
    }
    let thunk = entry_thunk(name, target);
    let p = arena::alloc(STUB_SIZE, 16);
    let mut code = [0xccu8; STUB_SIZE];
    // jmp *0(%rip) followed by the 8-byte absolute target (the entry thunk).
    code[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    code[6..14].copy_from_slice(&(thunk as u64).to_le_bytes());
    // SAFETY: `p` is a fresh, writable and executable 16-byte arena block.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p, STUB_SIZE) };
    let a = p as usize;
    s.stubs.insert(name.to_string(), a);
    s.stub_targets.insert(a, (name.to_string(), target));
    (a, true)
}

/// Size of an entry thunk.
const THUNK_SIZE: usize = 64;

/// The entry thunk of kernel function `name`: saves the argument registers,
/// calls the SMP model's hook (`kern::smp::stub_hook(site, return
/// address)`: a preemption point and a trace record of "who called what"),
/// restores them and jumps to `target` with the stack exactly as the caller
/// left it (so the function still finds its return address at `[rsp]`).
/// Module code uses no SSE registers, so only integer registers (and `al`,
/// the vector-register count of variadic calls) are kept.
fn entry_thunk(name: &str, target: usize) -> usize {
    let site = crate::kern::smp::trace::register_site(name);
    let hook = crate::kern::smp::stub_hook as *const () as usize;
    let mut c: Vec<u8> = Vec::with_capacity(THUNK_SIZE);
    // push rdi, rsi, rdx, rcx, r8, r9, rax: 7 pushes re-align rsp to 16.
    c.extend_from_slice(&[0x57, 0x56, 0x52, 0x51, 0x41, 0x50, 0x41, 0x51, 0x50]);
    // mov edi, site
    c.push(0xbf);
    c.extend_from_slice(&site.to_le_bytes());
    // mov rsi, [rsp + 56] (the caller's return address)
    c.extend_from_slice(&[0x48, 0x8b, 0x74, 0x24, 0x38]);
    // movabs rax, hook; call rax
    c.extend_from_slice(&[0x48, 0xb8]);
    c.extend_from_slice(&(hook as u64).to_le_bytes());
    c.extend_from_slice(&[0xff, 0xd0]);
    // pop rax, r9, r8, rcx, rdx, rsi, rdi
    c.extend_from_slice(&[0x58, 0x41, 0x59, 0x41, 0x58, 0x59, 0x5a, 0x5e, 0x5f]);
    // jmp *0(%rip); .quad target
    c.extend_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    c.extend_from_slice(&(target as u64).to_le_bytes());
    assert!(c.len() <= THUNK_SIZE, "entry thunk too long");
    c.resize(THUNK_SIZE, 0xcc);
    let p = arena::alloc(THUNK_SIZE, 16);
    // SAFETY: `p` is a fresh, writable and executable arena block of THUNK_SIZE bytes.
    unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), p, THUNK_SIZE) };
    p as usize
}

#[derive(Default)]
pub(super) struct RelocStats {
    pub(super) counts: [usize; 5], // NONE 64 PC32 PLT32 32S
    pub(super) new_stubs: usize,
}

/// Resolution state of one symbol-table entry.
#[derive(Clone, Copy, Debug)]
pub(super) enum Res {
    Addr(usize),
    /// Defined in a section that was not loaded.
    Unloaded,
    /// Undefined; to be looked up.
    Undef,
}

pub(super) struct Linking {
    pub(super) obj: ElfObj,
    pub(super) path: String,
    pub(super) id: i32,
    pub(super) base: usize,
    /// Section index → address, for loaded sections.
    pub(super) sec_addr: HashMap<usize, usize>,
    pub(super) sec_name: HashMap<usize, String>,
    pub(super) sec_size: HashMap<usize, usize>,
    pub(super) syms: Vec<Sym>,
    pub(super) strndx: usize,
    pub(super) res: Vec<Res>,
    pub(super) relas: Vec<(usize, usize)>, // (rela section, target section)
}

impl Linking {
    fn sym_name(&self, i: usize) -> String {
        let sym = &self.syms[i];
        if sym.typ() == STT_SECTION {
            if let Some(n) = self.sec_name.get(&(sym.shndx as usize)) {
                return n.clone();
            }
        }
        self.obj
            .str_at(self.strndx, sym.name)
            .unwrap_or("")
            .to_string()
    }
}

pub(super) fn elf_fail(path: &str, e: ElfError) -> i32 {
    match e {
        ElfError::NotElf => ENOEXEC,
        ElfError::Layout => {
            kmsg(format!("kldload: {path}: Unsupported file layout"));
            ENOEXEC
        }
        ElfError::Version => {
            kmsg(format!("kldload: {path}: Unsupported file version"));
            ENOEXEC
        }
        ElfError::NotRelocatable => {
            kmsg(format!("linker_load_file: {path} - unsupported file type"));
            ENOEXEC
        }
        ElfError::Machine => {
            kmsg(format!("kldload: {path}: Unsupported machine"));
            ENOEXEC
        }
        ElfError::Malformed(m) => {
            kmsg(format!("kldload: {path}: {m}"));
            ENOEXEC
        }
    }
}

/// Parses, lays out and places the file; returns the linking context and the
/// new (not yet linked) `LinkerFile`, already entered in the file list.
pub(super) fn place(path: &Path) -> Result<Linking, i32> {
    let spath = path.display().to_string();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ENOENT),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(EPERM),
        Err(_) => return Err(EIO),
    };
    let obj = ElfObj::parse(data).map_err(|e| elf_fail(&spath, e))?;
    let n = obj.shdrs.len();

    // Scan the section headers like link_elf_load_file.
    let mut nprog = 0;
    let mut nsym = 0;
    let mut symtab = usize::MAX;
    let mut symstr = usize::MAX;
    let mut relas = Vec::new();
    for (i, sh) in obj.shdrs.iter().enumerate() {
        if sh.size == 0 {
            continue;
        }
        match sh.sh_type {
            SHT_PROGBITS | SHT_NOBITS | SHT_X86_64_UNWIND => {
                if sh.flags & SHF_ALLOC != 0 {
                    nprog += 1;
                }
            }
            SHT_SYMTAB => {
                nsym += 1;
                symtab = i;
                symstr = sh.link as usize;
            }
            SHT_REL | SHT_RELA => {
                let target = sh.info as usize;
                if target >= n {
                    kmsg(format!(
                        "kldload: {spath}: relocation section {i} targets bad section {target}"
                    ));
                    return Err(ENOEXEC);
                }
                if obj.shdrs[target].flags & SHF_ALLOC == 0 {
                    continue; // debug info and the like
                }
                if sh.sh_type == SHT_REL {
                    kmsg(format!(
                        "kldload: {spath}: SHT_REL relocations are not supported by the harness \
                         (amd64 objects use RELA)"
                    ));
                    return Err(ENOEXEC);
                }
                relas.push((i, target));
            }
            _ => {}
        }
    }
    if nprog == 0 {
        kmsg(format!("kldload: {spath}: file has no contents"));
        return Err(ENOEXEC);
    }
    if nsym != 1 {
        kmsg(format!(
            "kldload: {spath}: file must have exactly one symbol table"
        ));
        return Err(ENOEXEC);
    }
    if symstr >= n || obj.shdrs[symstr].sh_type != SHT_STRTAB {
        kmsg(format!("kldload: {spath}: file has invalid symbol strings"));
        return Err(ENOEXEC);
    }
    let syms = obj.symbols(symtab).map_err(|e| elf_fail(&spath, e))?;

    // Layout: loaded sections in header order, each at its alignment.
    let mut layout: Vec<(usize, usize)> = Vec::new(); // (section, offset)
    let mut off = 0usize;
    for (i, sh) in obj.shdrs.iter().enumerate() {
        if sh.size == 0 || sh.flags & SHF_ALLOC == 0 {
            continue;
        }
        if !matches!(sh.sh_type, SHT_PROGBITS | SHT_NOBITS | SHT_X86_64_UNWIND) {
            continue;
        }
        let align = (sh.addralign as usize).max(1);
        if !align.is_power_of_two() {
            kmsg(format!(
                "kldload: {spath}: section {i} has alignment {align}"
            ));
            return Err(ENOEXEC);
        }
        off = (off + align - 1) & !(align - 1);
        layout.push((i, off));
        off += sh.size as usize;
    }
    // COMMON symbols after the sections.
    let mut commons: Vec<(usize, usize)> = Vec::new(); // (symbol, offset)
    for (k, sym) in syms.iter().enumerate() {
        if sym.shndx == SHN_COMMON {
            let align = (sym.value as usize).max(1).next_power_of_two();
            off = (off + align - 1) & !(align - 1);
            commons.push((k, off));
            off += (sym.size as usize).max(1);
        }
    }
    let size = off.max(1).div_ceil(PAGE) * PAGE;
    let base = arena::alloc(size, PAGE) as usize;

    let mut sec_addr = HashMap::new();
    let mut sec_name = HashMap::new();
    let mut sec_size = HashMap::new();
    let mut sections = Vec::new();
    for &(i, o) in &layout {
        let sh = obj.shdrs[i];
        let addr = base + o;
        if sh.sh_type != SHT_NOBITS {
            let bytes = obj.section_bytes(i).map_err(|e| elf_fail(&spath, e))?;
            // SAFETY: `addr..addr+size` lies inside the fresh arena block
            // allocated above for this image (the layout computed its size).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        } else {
            // SAFETY: as above; NOBITS is zeroed.
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0, sh.size as usize) };
        }
        let name = obj.section_name(i).map(str::to_string).unwrap_or_else(|| {
            match sh.sh_type {
                SHT_PROGBITS => "<<PROGBITS>>",
                SHT_X86_64_UNWIND => "<<UNWIND>>",
                _ => "<<NOBITS>>",
            }
            .to_string()
        });
        sec_addr.insert(i, addr);
        sec_name.insert(i, name.clone());
        sec_size.insert(i, sh.size as usize);
        sections.push(Section {
            name,
            index: i,
            addr,
            size: sh.size as usize,
            exec: sh.flags & SHF_EXECINSTR != 0,
        });
    }

    // Symbol values.
    let mut res = vec![Res::Undef; syms.len()];
    for (k, sym) in syms.iter().enumerate() {
        res[k] = match sym.shndx {
            SHN_UNDEF => Res::Undef,
            SHN_ABS => Res::Addr(sym.value as usize),
            SHN_COMMON => Res::Unloaded, // filled below
            SHN_XINDEX => Res::Unloaded,
            x if x >= SHN_LORESERVE => Res::Unloaded,
            x => match sec_addr.get(&(x as usize)) {
                Some(a) => Res::Addr(a + sym.value as usize),
                None => Res::Unloaded,
            },
        };
    }
    for &(k, o) in &commons {
        res[k] = Res::Addr(base + o);
    }
    let mut link = Linking {
        obj,
        path: spath,
        id: 0,
        base,
        sec_addr,
        sec_name,
        sec_size,
        syms,
        strndx: symstr,
        res,
        relas,
    };
    // link_elf_fix_link_set: __start_X / __stop_X of the module's own section X.
    for k in 1..link.syms.len() {
        if link.syms[k].shndx != SHN_UNDEF {
            continue;
        }
        let name = link.sym_name(k);
        let (start, set) = if let Some(x) = name.strip_prefix("__start_") {
            (true, x)
        } else if let Some(x) = name.strip_prefix("__stop_") {
            (false, x)
        } else {
            continue;
        };
        if let Some(sec) = sections.iter().find(|s| s.name == set) {
            link.res[k] = Res::Addr(if start { sec.addr } else { sec.addr + sec.size });
        }
    }

    // Defined, named symbols for lookups and diagnostics.
    let mut symbols = Vec::new();
    for (k, sym) in link.syms.iter().enumerate() {
        if sym.shndx == SHN_UNDEF || sym.typ() == STT_SECTION {
            continue;
        }
        if let Res::Addr(a) = link.res[k] {
            let name = link.sym_name(k);
            if !name.is_empty() {
                symbols.push(SymEntry {
                    name,
                    addr: a,
                    size: sym.size as usize,
                    bind: sym.bind(),
                    typ: sym.typ(),
                });
            }
        }
    }

    let filename = basename(&link.path).to_string();
    trace(format!(
        "placing {filename} at {base:#x} ({size} bytes, {} sections)",
        sections.len()
    ));
    let id = with(|s| {
        let id = s.next_file_id;
        s.next_file_id += 1;
        s.files.push(LinkerFile {
            id,
            filename,
            pathname: path.to_path_buf(),
            base,
            size,
            sections,
            symbols,
            refs: 1,
            userrefs: 0,
            linked: false,
            deps: Vec::new(),
            modules: Vec::new(),
            had_modules: false,
        });
        id
    });
    link.id = id;
    Ok(link)
}

pub(super) enum RelocError {
    /// Unsupported type (message already printed).
    BadType,
    /// Symbol could not be resolved (global) — name.
    Undefined,
    /// Harness-detected placement problem (message printed).
    Range,
}

/// Applies the relocations whose symbol is local (`pass_local`) or global.
pub(super) fn relocate(
    link: &mut Linking,
    pass_local: bool,
    stats: &mut RelocStats,
) -> Result<(), i32> {
    let mut errno = 0;
    let mut missing: Vec<String> = Vec::new();
    let relas = link.relas.clone();
    for (rsec, target) in relas {
        let Some(&tbase) = link.sec_addr.get(&target) else {
            kmsg(format!("kldload: {}: lost base for relatab", link.path));
            return Err(ENOEXEC);
        };
        let tsize = link.sec_size[&target];
        let entries = link.obj.relas(rsec).map_err(|e| elf_fail(&link.path, e))?;
        for r in entries {
            let k = r.sym as usize;
            if k >= link.syms.len() {
                continue; // the kernel skips bogus indexes
            }
            let local = link.syms[k].bind() == STB_LOCAL;
            if local != pass_local {
                continue;
            }
            match apply_one(link, &r, k, tbase, tsize, target, stats) {
                Ok(()) => {}
                Err(RelocError::BadType) => {
                    if local {
                        // FreeBSD only prints and leaves the field unrelocated;
                        // the harness refuses such a module.
                        errno = if errno == 0 { ENOEXEC } else { errno };
                    } else {
                        kmsg(format!(
                            "link_elf_obj: symbol {} undefined",
                            link.sym_name(k)
                        ));
                        errno = ENOENT;
                    }
                }
                Err(RelocError::Undefined) => {
                    let name = link.sym_name(k);
                    if !missing.contains(&name) {
                        kmsg(format!("link_elf_obj: symbol {name} undefined"));
                        missing.push(name);
                    }
                    errno = ENOENT;
                }
                Err(RelocError::Range) => {
                    if errno == 0 {
                        errno = ENOEXEC;
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        with(|s| s.missing.extend(missing));
    }
    if errno != 0 {
        Err(errno)
    } else {
        Ok(())
    }
}

/// Resolves symbol `k` for a relocation (cached for globals).
pub(super) fn resolve(link: &mut Linking, k: usize, stats: &mut RelocStats) -> Option<usize> {
    match link.res[k] {
        Res::Addr(a) => return Some(a),
        Res::Unloaded => return None,
        Res::Undef => {}
    }
    let sym = link.syms[k];
    if sym.bind() == STB_LOCAL {
        return None; // local, but undefined
    }
    let name = link.sym_name(k);
    if name.is_empty() {
        return None;
    }
    let id = link.id;
    let found = with(|s| {
        if let Some(e) = s.exports.get(&name) {
            return Some(match e.kind {
                Kind::Data => e.addr,
                Kind::Func => {
                    let (a, new) = stub_for(s, &name, e.addr);
                    if new {
                        stats.new_stubs += 1;
                    }
                    a
                }
            });
        }
        // The dependencies' global definitions (the kernel is dependency 0).
        let deps = s
            .files
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.deps.clone())
            .unwrap_or_default();
        for d in deps {
            if let Some(f) = s.files.iter().find(|f| f.id == d) {
                if let Some(e) = f
                    .symbols
                    .iter()
                    .find(|e| e.name == name && e.bind != STB_LOCAL)
                {
                    return Some(e.addr);
                }
            }
        }
        None
    });
    match found {
        Some(a) => {
            link.res[k] = Res::Addr(a);
            Some(a)
        }
        None if sym.bind() == STB_WEAK => Some(0),
        None => None,
    }
}

pub(super) fn apply_one(
    link: &mut Linking,
    r: &Rela,
    k: usize,
    tbase: usize,
    tsize: usize,
    target: usize,
    stats: &mut RelocStats,
) -> Result<(), RelocError> {
    let width = match r.rtype {
        R_X86_64_NONE => {
            stats.counts[0] += 1;
            return Ok(());
        }
        R_X86_64_64 => 8,
        R_X86_64_PC32 | R_X86_64_PLT32 | R_X86_64_32S => 4,
        t => {
            kmsg(format!("kldload: unexpected relocation type {t}"));
            return Err(RelocError::BadType);
        }
    };
    let off = r.offset as usize;
    if off.checked_add(width).is_none_or(|e| e > tsize) {
        kmsg(format!(
            "kldload: {}: relocation at {}+{off:#x} outside the section",
            link.path, link.sec_name[&target]
        ));
        return Err(RelocError::Range);
    }
    let p = tbase + off;
    let Some(s) = resolve(link, k, stats) else {
        if link.syms[k].bind() == STB_LOCAL {
            kmsg(format!(
                "kldload: {}: relocation at {}+{off:#x} against {}, which is not loaded",
                link.path,
                link.sec_name[&target],
                link.sym_name(k)
            ));
            return Err(RelocError::Range);
        }
        return Err(RelocError::Undefined);
    };
    let val = (s as i64).wrapping_add(r.addend);
    let range_err = |what: &str, v: i64, link: &Linking| {
        kmsg(format!(
            "kldload: {}: {}+{off:#x}: R_X86_64_{} to {} ({s:#x}) {what} ({v:#x})",
            link.path,
            link.sec_name[&target],
            reloc_name(r.rtype),
            link.sym_name(k)
        ));
        RelocError::Range
    };
    match r.rtype {
        R_X86_64_64 => {
            // SAFETY: `p..p+8` lies inside the target section of this image
            // (checked against the section size above).
            unsafe { std::ptr::write_unaligned(p as *mut u64, val as u64) };
            stats.counts[1] += 1;
        }
        R_X86_64_PC32 | R_X86_64_PLT32 => {
            let v = val.wrapping_sub(p as i64);
            if i32::try_from(v).is_err() {
                return Err(range_err("out of the +-2 GiB range", v, link));
            }
            // SAFETY: `p..p+4` lies inside the target section (checked above).
            unsafe { std::ptr::write_unaligned(p as *mut i32, v as i32) };
            stats.counts[if r.rtype == R_X86_64_PC32 { 2 } else { 3 }] += 1;
        }
        R_X86_64_32S => {
            if i32::try_from(val).is_err() {
                return Err(range_err("does not sign-extend from 32 bits", val, link));
            }
            // SAFETY: `p..p+4` lies inside the target section (checked above).
            unsafe { std::ptr::write_unaligned(p as *mut i32, val as i32) };
            stats.counts[4] += 1;
        }
        _ => unreachable!("filtered above"),
    }
    Ok(())
}
