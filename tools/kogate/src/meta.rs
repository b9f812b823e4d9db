//! Rule 9: decode `set_modmetadata_set` and `set_sysinit_set` the way the
//! kernel linker does, resolving every pointer through its RELA relocation.
//!
//! Layouts (FreeBSD 15 amd64, sys/module.h and sys/kernel.h):
//! * `struct mod_metadata` (24): md_version i32 @0, md_type i32 @4,
//!   md_data ptr @8, md_cval ptr @16.
//! * `struct mod_depend` (12): min, preferred, max (i32).
//! * `moduledata_t` (24): name ptr @0, evhand ptr @8, priv ptr @16.
//! * `struct mod_version` (4): mv_version i32.
//! * `struct sysinit` (32): subsystem u32 @0, order u32 @4, STAILQ link @8,
//!   func ptr @16, udata ptr @24.

use crate::check::{Functions, Outcome, RelocIndex};
use crate::elf::{self, rd_cstr, rd_u32, Elf};
use crate::exports::Exports;

pub const MDT_STRUCT_VERSION: i32 = 1;
pub const MDT_DEPEND: i32 = 1;
pub const MDT_MODULE: i32 = 2;
pub const MDT_VERSION: i32 = 3;
pub const MDT_PNP_INFO: i32 = 4;

/// NG_ABI_VERSION of a release (non-INVARIANTS, non-NETGRAPH_DEBUG) kernel.
pub const NG_ABI_VERSION: i32 = 12;
/// Accepted kernel dependency range: any FreeBSD 15.x.
pub const KERNEL_MIN: i32 = 1_500_000;
pub const KERNEL_MAX: i32 = 1_599_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ptr {
    Null,
    /// Into this object: section index and offset.
    Local {
        sec: usize,
        off: u64,
    },
    /// To an undefined (imported) symbol.
    Extern {
        name: String,
        addend: i64,
    },
    /// Non-zero bytes without a relocation (an absolute address).
    Abs(u64),
    Bad(String),
}

/// Reads the 8-byte pointer stored at `sec+off`.
pub fn read_ptr(elf: &Elf, relocs: &RelocIndex, sec: usize, off: u64) -> Ptr {
    let s = &elf.sections[sec];
    if off.checked_add(8).is_none_or(|e| e > s.size) {
        return Ptr::Bad(format!(
            "pointer at {}+{off:#x} is outside the section",
            s.name
        ));
    }
    let content = elf::rd_u64(elf.bytes(s), off as usize).unwrap_or(0);
    let Some(r) = relocs.get(sec, off) else {
        return if content == 0 {
            Ptr::Null
        } else {
            Ptr::Abs(content)
        };
    };
    if r.rtype != 1 {
        return Ptr::Bad(format!(
            "pointer at {}+{off:#x} is relocated with {} instead of R_X86_64_64",
            s.name,
            elf::reloc_name(r.rtype)
        ));
    }
    let Some(sym) = elf.symbols.get(r.sym as usize) else {
        return Ptr::Bad("relocation symbol out of range".into());
    };
    if r.sym == 0 {
        return if r.addend == 0 {
            Ptr::Null
        } else {
            Ptr::Abs(r.addend as u64)
        };
    }
    match sym.shndx {
        elf::SHN_UNDEF => Ptr::Extern {
            name: sym.name.clone(),
            addend: r.addend,
        },
        elf::SHN_ABS => Ptr::Abs(sym.value.wrapping_add(r.addend as u64)),
        x if x >= elf::SHN_LORESERVE || x as usize >= elf.sections.len() => Ptr::Bad(format!(
            "pointer at {}+{off:#x} targets symbol {} with special section index {x:#x}",
            s.name, sym.name
        )),
        x => {
            let target = sym.value.wrapping_add(r.addend as u64);
            let ts = &elf.sections[x as usize];
            if target > ts.size {
                Ptr::Bad(format!(
                    "pointer at {}+{off:#x} targets {}+{target:#x}, past the end of that section",
                    s.name, ts.name
                ))
            } else {
                Ptr::Local {
                    sec: x as usize,
                    off: target,
                }
            }
        }
    }
}

/// Name of the symbol defined at exactly `sec+off`, or `section+0xoff`.
pub fn describe_local(elf: &Elf, sec: usize, off: u64) -> String {
    let mut best: Option<&elf::Symbol> = None;
    for s in elf.symbols.iter().skip(1) {
        if s.shndx as usize == sec
            && s.shndx != elf::SHN_UNDEF
            && s.shndx < elf::SHN_LORESERVE
            && s.value == off
            && !s.name.is_empty()
            && s.typ() != elf::STT_SECTION
            && s.typ() != elf::STT_FILE
        {
            let rank = |x: &elf::Symbol| {
                (matches!(x.typ(), elf::STT_FUNC | elf::STT_OBJECT) as u8) * 2
                    + (x.bind() != elf::STB_LOCAL) as u8
            };
            if best.is_none_or(|b| rank(s) > rank(b)) {
                best = Some(s);
            }
        }
    }
    match best {
        Some(s) => s.name.clone(),
        None => format!("{}+{off:#x}", elf.sections[sec].name),
    }
}

pub fn describe(elf: &Elf, p: &Ptr) -> String {
    match p {
        Ptr::Null => "NULL".into(),
        Ptr::Local { sec, off } => format!("&{}", describe_local(elf, *sec, *off)),
        Ptr::Extern { name, addend: 0 } => format!("&{name}"),
        Ptr::Extern { name, addend } => format!("&{name}{addend:+}"),
        Ptr::Abs(v) => format!("absolute {v:#x} (no relocation)"),
        Ptr::Bad(e) => format!("<{e}>"),
    }
}

fn fits(elf: &Elf, sec: usize, off: u64, len: u64) -> bool {
    let s = &elf.sections[sec];
    s.is_loaded() && off.checked_add(len).is_some_and(|e| e <= s.size)
}

fn rd_i32(elf: &Elf, sec: usize, off: u64) -> i32 {
    // NOBITS sections read as zero.
    rd_u32(elf.bytes(&elf.sections[sec]), off as usize).unwrap_or(0) as i32
}

fn read_string(elf: &Elf, p: &Ptr) -> Result<String, String> {
    match p {
        Ptr::Local { sec, off } => {
            let s = &elf.sections[*sec];
            if !s.is_loaded() {
                return Err(format!(
                    "string pointer targets non-loaded section {}",
                    s.name
                ));
            }
            rd_cstr(elf.bytes(s), *off as usize)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| format!("no NUL-terminated string at {}+{off:#x}", s.name))
        }
        other => Err(format!(
            "string pointer is {} instead of a pointer into the module",
            describe(elf, other)
        )),
    }
}

/// A function pointer must be NULL (if `allow_null`), a function of this
/// module, or a known export.
fn check_func_ptr(
    elf: &Elf,
    funcs: &Functions,
    exports: &Exports,
    p: &Ptr,
    allow_null: bool,
) -> Result<String, String> {
    match p {
        Ptr::Null if allow_null => Ok("none".into()),
        Ptr::Null => Err("is NULL".into()),
        Ptr::Local { sec, off } => {
            let s = &elf.sections[*sec];
            if !s.is_exec() {
                return Err(format!(
                    "points at {} in non-executable section {}",
                    describe_local(elf, *sec, *off),
                    s.name
                ));
            }
            match funcs.at(*sec, *off) {
                Some(f) => Ok(f.name.clone()),
                None => Err(format!(
                    "points at {}+{off:#x}, which is not the start of a function symbol",
                    s.name
                )),
            }
        }
        Ptr::Extern { name, addend } => {
            if *addend != 0 {
                Err(format!("points into {name}{addend:+}, not at a function"))
            } else if let Some(e) = exports.get(name) {
                Ok(format!("{name} ({})", e.module))
            } else {
                Err(format!(
                    "calls {name}, which is not a known kernel/netgraph.ko export"
                ))
            }
        }
        other => Err(format!("is {}", describe(elf, other))),
    }
}

struct Module {
    cval: String,
    name: Option<String>,
}

/// Decodes and asserts the module metadata. Returns summary lines.
#[allow(clippy::too_many_arguments)]
pub fn check_metadata(
    elf: &Elf,
    relocs: &RelocIndex,
    funcs: &Functions,
    exports: &Exports,
    expected: &str,
    expect_version: Option<i32>,
    out: &mut Outcome,
) -> Vec<String> {
    const R: &str = "modmetadata";
    let mut lines = Vec::new();
    let Some(set) = elf.section_by_name("set_modmetadata_set") else {
        out.fail(
            R,
            "no set_modmetadata_set section: the object declares no module (DECLARE_MODULE / NETGRAPH_INIT, MODULE_VERSION, MODULE_DEPEND)",
        );
        return lines;
    };
    if !set.is_loaded() || !set.size.is_multiple_of(8) || set.size == 0 {
        out.fail(
            R,
            format!(
                "set_modmetadata_set must be a loaded (SHF_ALLOC PROGBITS) array of 8-byte pointers; it has type {}, flags {:#x}, size {}",
                set.sh_type, set.flags, set.size
            ),
        );
        return lines;
    }
    let mut modules: Vec<Module> = Vec::new();
    let mut versions: Vec<(String, i32)> = Vec::new();
    let mut depends: Vec<(String, i32, i32, i32)> = Vec::new();
    for i in 0..set.size / 8 {
        let entry = format!("set_modmetadata_set[{i}]");
        let p = read_ptr(elf, relocs, set.index, i * 8);
        let Ptr::Local { sec, off } = p else {
            out.fail(
                R,
                format!(
                    "{entry} is {}: it must point at a struct mod_metadata in the module",
                    describe(elf, &p)
                ),
            );
            continue;
        };
        let label = format!("{entry} (&{})", describe_local(elf, sec, off));
        if !fits(elf, sec, off, 24) {
            out.fail(
                R,
                format!(
                    "{label}: struct mod_metadata (24 bytes) does not fit in {}",
                    elf.sections[sec].name
                ),
            );
            continue;
        }
        let md_version = rd_i32(elf, sec, off);
        let md_type = rd_i32(elf, sec, off + 4);
        if md_version != MDT_STRUCT_VERSION {
            out.fail(
                R,
                format!("{label}: md_version is {md_version}, must be MDT_STRUCT_VERSION ({MDT_STRUCT_VERSION})"),
            );
        }
        let cval = match read_string(elf, &read_ptr(elf, relocs, sec, off + 16)) {
            Ok(s) => s,
            Err(e) => {
                out.fail(R, format!("{label}: md_cval: {e}"));
                continue;
            }
        };
        let data = read_ptr(elf, relocs, sec, off + 8);
        let need = match md_type {
            MDT_DEPEND => 12,
            MDT_MODULE => 24,
            MDT_VERSION => 4,
            MDT_PNP_INFO => {
                lines.push(format!("modmetadata: PNP_INFO {cval} (not decoded)"));
                continue;
            }
            t => {
                out.fail(R, format!("{label}: unknown md_type {t} (cval {cval:?})"));
                continue;
            }
        };
        let Ptr::Local {
            sec: dsec,
            off: doff,
        } = data
        else {
            out.fail(
                R,
                format!(
                    "{label} ({cval}): md_data is {}, must point into the module",
                    describe(elf, &data)
                ),
            );
            continue;
        };
        if !fits(elf, dsec, doff, need) {
            out.fail(
                R,
                format!(
                    "{label} ({cval}): md_data struct ({need} bytes) does not fit in {}",
                    elf.sections[dsec].name
                ),
            );
            continue;
        }
        match md_type {
            MDT_DEPEND => {
                let (min, pref, max) = (
                    rd_i32(elf, dsec, doff),
                    rd_i32(elf, dsec, doff + 4),
                    rd_i32(elf, dsec, doff + 8),
                );
                lines.push(format!(
                    "modmetadata: DEPEND  {cval} min={min} pref={pref} max={max}"
                ));
                depends.push((cval, min, pref, max));
            }
            MDT_VERSION => {
                let v = rd_i32(elf, dsec, doff);
                lines.push(format!("modmetadata: VERSION {cval} {v}"));
                versions.push((cval, v));
            }
            _ => {
                let name_ptr = read_ptr(elf, relocs, dsec, doff);
                let name = match read_string(elf, &name_ptr) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        out.fail(R, format!("{label} ({cval}): moduledata_t name: {e}"));
                        None
                    }
                };
                let evhand = read_ptr(elf, relocs, dsec, doff + 8);
                let handler = match check_func_ptr(elf, funcs, exports, &evhand, true) {
                    Ok(h) => h,
                    Err(e) => {
                        out.fail(
                            R,
                            format!("{label} ({cval}): moduledata_t event handler {e}"),
                        );
                        describe(elf, &evhand)
                    }
                };
                let priv_ = describe(elf, &read_ptr(elf, relocs, dsec, doff + 16));
                lines.push(format!(
                    "modmetadata: MODULE  {cval} (moduledata {}: name {:?}, handler {handler}, priv {priv_})",
                    describe_local(elf, dsec, doff),
                    name.as_deref().unwrap_or("?")
                ));
                modules.push(Module { cval, name });
            }
        }
    }

    // Exactly one module, with the expected name.
    match modules.len() {
        0 => out.fail(
            R,
            format!("no MDT_MODULE entry: expected module {expected:?}"),
        ),
        1 => {
            let m = &modules[0];
            if m.cval != expected {
                out.fail(
                    R,
                    format!("MDT_MODULE is named {:?}, expected {expected:?} (use --expect-module to override)", m.cval),
                );
            }
            if let Some(n) = &m.name {
                if n != &m.cval {
                    out.fail(
                        R,
                        format!(
                            "moduledata_t name {n:?} differs from the MDT_MODULE label {:?}",
                            m.cval
                        ),
                    );
                }
            }
        }
        n => out.fail(
            R,
            format!(
                "{n} MDT_MODULE entries ({}): expected exactly one ({expected:?})",
                modules
                    .iter()
                    .map(|m| m.cval.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
    let mine: Vec<i32> = versions
        .iter()
        .filter(|v| v.0 == expected)
        .map(|v| v.1)
        .collect();
    match (mine.as_slice(), expect_version) {
        ([], None) => {}
        ([], Some(want)) => out.fail(R, format!("no MDT_VERSION for module {expected:?} (MODULE_VERSION({expected}, {want}))")),
        ([v], Some(want)) if *v != want => out.fail(
            R,
            format!("MDT_VERSION of {expected:?} is {v}, expected {want} (use --expect-version to override)"),
        ),
        ([_], _) => {}
        (more, _) => out.fail(R, format!("{} MDT_VERSION entries for {expected:?}", more.len())),
    }
    let dep = |name: &str| -> Vec<(i32, i32, i32)> {
        depends
            .iter()
            .filter(|d| d.0 == name)
            .map(|d| (d.1, d.2, d.3))
            .collect()
    };
    match dep("kernel").as_slice() {
        [] => out.fail(R, "no MDT_DEPEND on \"kernel\" (DECLARE_MODULE emits one: min=pref=__FreeBSD_version, max=1599999)"),
        [(min, pref, max)] => {
            if !(*min >= KERNEL_MIN && *max <= KERNEL_MAX && min <= pref && pref <= max) {
                out.fail(
                    R,
                    format!(
                        "MDT_DEPEND on kernel is min={min} pref={pref} max={max}: must satisfy {KERNEL_MIN} <= min <= pref <= max <= {KERNEL_MAX} (FreeBSD 15.x; build with -D__FreeBSD_version=1500068)"
                    ),
                );
            }
        }
        more => out.fail(R, format!("{} MDT_DEPEND entries on kernel", more.len())),
    }
    match dep("netgraph").as_slice() {
        [] => out.fail(R, format!("no MDT_DEPEND on \"netgraph\" (NETGRAPH_INIT emits MODULE_DEPEND(..., netgraph, {NG_ABI_VERSION}, {NG_ABI_VERSION}, {NG_ABI_VERSION}))")),
        [(min, pref, max)] => {
            if (*min, *pref, *max) != (NG_ABI_VERSION, NG_ABI_VERSION, NG_ABI_VERSION) {
                out.fail(
                    R,
                    format!(
                        "MDT_DEPEND on netgraph is min={min} pref={pref} max={max}: must be {NG_ABI_VERSION}/{NG_ABI_VERSION}/{NG_ABI_VERSION} (NG_ABI_VERSION of a release kernel; INVARIANTS or NETGRAPH_DEBUG builds add 0x20000/0x10000)"
                    ),
                );
            }
        }
        more => out.fail(R, format!("{} MDT_DEPEND entries on netgraph", more.len())),
    }
    lines
}

/// Decodes `set_sysinit_set` (required) and `set_sysuninit_set` (optional).
pub fn check_sysinits(
    elf: &Elf,
    relocs: &RelocIndex,
    funcs: &Functions,
    exports: &Exports,
    out: &mut Outcome,
) -> Vec<String> {
    const R: &str = "sysinit";
    let mut lines = Vec::new();
    for (setname, kind, required) in [
        ("set_sysinit_set", "SYSINIT  ", true),
        ("set_sysuninit_set", "SYSUNINIT", false),
    ] {
        let Some(set) = elf.section_by_name(setname) else {
            if required {
                out.fail(
                    R,
                    "no set_sysinit_set section: nothing would run at load (DECLARE_MODULE registers the module through a module_register_init SYSINIT)",
                );
            }
            continue;
        };
        if !set.is_loaded() || !set.size.is_multiple_of(8) || set.size == 0 {
            out.fail(
                R,
                format!(
                    "{setname} must be a loaded array of 8-byte pointers; it has type {}, flags {:#x}, size {}",
                    set.sh_type, set.flags, set.size
                ),
            );
            continue;
        }
        if set.flags & elf::SHF_WRITE == 0 {
            out.fail(
                R,
                format!("{setname} is read-only: FreeBSD 15 declares sysinit sets writable (DATA_WSET) and the kernel may reorder them; emit the pointer array as a mutable static"),
            );
        }
        for i in 0..set.size / 8 {
            let entry = format!("{setname}[{i}]");
            let p = read_ptr(elf, relocs, set.index, i * 8);
            let Ptr::Local { sec, off } = p else {
                out.fail(
                    R,
                    format!(
                        "{entry} is {}: it must point at a struct sysinit in the module",
                        describe(elf, &p)
                    ),
                );
                continue;
            };
            let label = format!("{entry} (&{})", describe_local(elf, sec, off));
            if !fits(elf, sec, off, 32) {
                out.fail(
                    R,
                    format!(
                        "{label}: struct sysinit (32 bytes) does not fit in {}",
                        elf.sections[sec].name
                    ),
                );
                continue;
            }
            if elf.sections[sec].flags & elf::SHF_WRITE == 0 {
                out.fail(
                    R,
                    format!(
                        "{label}: struct sysinit is in read-only section {}; FreeBSD 15 links sysinits through their STAILQ field at load time, so it must be writable",
                        elf.sections[sec].name
                    ),
                );
            }
            let sub = rd_i32(elf, sec, off) as u32;
            let order = rd_i32(elf, sec, off + 4) as u32;
            let next = read_ptr(elf, relocs, sec, off + 8);
            if next != Ptr::Null {
                out.fail(
                    R,
                    format!(
                        "{label}: STAILQ link must be NULL in the file, is {}",
                        describe(elf, &next)
                    ),
                );
            }
            let fptr = read_ptr(elf, relocs, sec, off + 16);
            let func = match check_func_ptr(elf, funcs, exports, &fptr, false) {
                Ok(f) => f,
                Err(e) => {
                    out.fail(R, format!("{label}: func {e}"));
                    describe(elf, &fptr)
                }
            };
            let udata = describe(elf, &read_ptr(elf, relocs, sec, off + 24));
            lines.push(format!(
                "{kind}: subsystem={sub:#09x} order={order:#09x} func={func} udata={udata}"
            ));
        }
    }
    lines
}
