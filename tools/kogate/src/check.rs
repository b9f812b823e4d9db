//! The rules. `check` runs every rule on one object and returns the
//! violations (rule slug + detail) and, for the success summary, a few lines
//! describing the object.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::disasm;
use crate::elf::{self, Elf, Rela, Section, Symbol};
use crate::exports::Exports;
use crate::meta;

/// Largest allowed stack adjustment in one function (bytes).
pub const MAX_FRAME: i64 = 2048;

pub struct Options {
    /// Module name to expect in MDT_MODULE (default: from the file name).
    pub expect_module: Option<String>,
    /// Expected MDT_VERSION of that module; `None` (`--foreign`): none
    /// is required (MODULE_VERSION is the project's policy for its own
    /// modules, not a kernel rule), and any single one is accepted.
    pub expect_version: Option<i32>,
    pub exports: Exports,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    /// Human-readable description of the object (printed on success).
    pub summary: Vec<String>,
}

impl Outcome {
    pub fn fail(&mut self, rule: &'static str, detail: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            detail: detail.into(),
        });
    }
}

/// `dir/ng_ksocket.ko` -> `ng_ksocket` (basename up to the first '.').
pub fn module_name_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base).to_string()
}

/// Symbol names of stack-probe helpers (compiler_builtins / MSVC style).
pub fn is_probe_symbol(name: &str) -> bool {
    matches!(
        name,
        "__rust_probestack"
            | "__probestack"
            | "__chkstk"
            | "__chkstk_ms"
            | "___chkstk_ms"
            | "___chkstk"
            | "_alloca"
            | "__alloca"
    ) || name.contains("probestack")
}

/// Relocations of every loaded section, indexed by target section and offset.
pub struct RelocIndex {
    pub by_section: HashMap<usize, BTreeMap<u64, Rela>>,
}

impl RelocIndex {
    pub fn get(&self, sec: usize, off: u64) -> Option<&Rela> {
        self.by_section.get(&sec).and_then(|m| m.get(&off))
    }
}

/// Function symbols per executable section, sorted by start offset.
pub struct Functions<'e> {
    pub by_section: HashMap<usize, Vec<&'e Symbol>>,
}

impl<'e> Functions<'e> {
    pub fn new(elf: &'e Elf) -> Functions<'e> {
        let mut by_section: HashMap<usize, Vec<&Symbol>> = HashMap::new();
        for s in elf.symbols.iter().skip(1) {
            let idx = s.shndx as usize;
            if s.typ() == elf::STT_FUNC
                && s.shndx != elf::SHN_UNDEF
                && s.shndx < elf::SHN_LORESERVE
                && idx < elf.sections.len()
                && elf.sections[idx].is_exec()
            {
                by_section.entry(idx).or_default().push(s);
            }
        }
        for v in by_section.values_mut() {
            // Globals first among equal starts so they name the function.
            v.sort_by_key(|s| (s.value, s.bind() == elf::STB_LOCAL, s.index));
        }
        Functions { by_section }
    }

    /// The function containing `off` in section `sec`, with the offset into it.
    pub fn containing(&self, sec: usize, off: u64) -> Option<(&'e Symbol, u64)> {
        let v = self.by_section.get(&sec)?;
        let i = v.partition_point(|s| s.value <= off);
        if i == 0 {
            return None;
        }
        // Walk back over aliases at the same start to the preferred name.
        let start = v[i - 1].value;
        let first = v[..i].partition_point(|s| s.value < start);
        let f = v[first];
        if f.size != 0 && off >= f.value + f.size {
            // Past the end of a sized function: padding between functions.
            return None;
        }
        Some((f, off - f.value))
    }

    /// A function symbol starting exactly at `off`.
    pub fn at(&self, sec: usize, off: u64) -> Option<&'e Symbol> {
        let v = self.by_section.get(&sec)?;
        v.iter().find(|s| s.value == off).copied()
    }

    /// Distinct function start offsets in a section.
    pub fn starts(&self, sec: usize) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .by_section
            .get(&sec)
            .map(|v| v.iter().map(|s| s.value).collect())
            .unwrap_or_default();
        v.dedup();
        v
    }
}

/// "section+0xoff (in function f+0xN)" for messages.
pub fn location(elf: &Elf, funcs: &Functions, sec: usize, off: u64) -> String {
    let name = &elf.sections[sec].name;
    match funcs.containing(sec, off) {
        Some((f, d)) => format!("{name}+{off:#x} (in {}+{d:#x})", f.name),
        None => format!("{name}+{off:#x}"),
    }
}

fn width_of_reloc(t: u32) -> u64 {
    match t {
        0 => 0,
        1 | 24 | 16..=18 | 25 | 27..=31 | 33 | 36 | 37 | 38 => 8,
        12 | 13 => 2,
        14 | 15 => 1,
        _ => 4,
    }
}

fn sym_display(elf: &Elf, idx: u32, addend: i64) -> String {
    match elf.symbols.get(idx as usize) {
        Some(s) if s.typ() == elf::STT_SECTION => match elf.sections.get(s.shndx as usize) {
            Some(x) => {
                // Name the object at section+addend when there is one.
                let target = s.value.wrapping_add(addend as u64);
                let named = meta::describe_local(elf, x.index, target);
                if named.starts_with(&x.name) {
                    format!("section {}", x.name)
                } else {
                    format!("section {} ({named})", x.name)
                }
            }
            None => "?".into(),
        },
        Some(s) if s.name.is_empty() => format!("symbol #{idx}"),
        Some(s) => s.name.clone(),
        None => format!("symbol #{idx} (out of range)"),
    }
}

/// Runs every rule on one object.
pub fn check(data: &[u8], module_name: &str, opts: &Options) -> Outcome {
    let mut out = Outcome::default();

    // ---- Rule 1: ELF header ------------------------------------------------
    let hdr = match elf::Header::parse(data) {
        Ok(h) => h,
        Err(e) => {
            out.fail("elf-header", e);
            return out;
        }
    };
    if hdr.class != elf::ELFCLASS64 {
        out.fail(
            "elf-header",
            format!(
                "EI_CLASS is {} ({}), the amd64 kernel linker needs ELFCLASS64 (2)",
                hdr.class,
                if hdr.class == 1 {
                    "ELFCLASS32"
                } else {
                    "invalid"
                }
            ),
        );
    }
    if hdr.data != elf::ELFDATA2LSB {
        out.fail(
            "elf-header",
            format!(
                "EI_DATA is {} ({}), the amd64 kernel linker needs ELFDATA2LSB (1)",
                hdr.data,
                if hdr.data == 2 {
                    "big-endian"
                } else {
                    "invalid"
                }
            ),
        );
    }
    if !out.violations.is_empty() {
        return out;
    }
    if hdr.ei_version != 1 || hdr.e_version != elf::EV_CURRENT {
        out.fail(
            "elf-header",
            format!(
                "EI_VERSION {} / e_version {}: both must be EV_CURRENT (1)",
                hdr.ei_version, hdr.e_version
            ),
        );
    }
    if hdr.e_type != elf::ET_REL {
        let t = match hdr.e_type {
            0 => "ET_NONE",
            2 => "ET_EXEC",
            3 => "ET_DYN",
            4 => "ET_CORE",
            _ => "unknown",
        };
        out.fail(
            "elf-header",
            format!(
                "e_type is {} ({t}); an amd64 kernel module must be ET_REL (1), i.e. `ld -r` output",
                hdr.e_type
            ),
        );
    }
    if hdr.e_machine != elf::EM_X86_64 {
        out.fail(
            "elf-header",
            format!(
                "e_machine is {}{}; must be EM_X86_64 (62)",
                hdr.e_machine,
                match hdr.e_machine {
                    3 => " (EM_386)",
                    183 => " (EM_AARCH64)",
                    243 => " (EM_RISCV)",
                    _ => "",
                }
            ),
        );
    }
    if hdr.osabi != elf::ELFOSABI_FREEBSD {
        out.fail(
            "elf-header",
            format!(
                "EI_OSABI is {}{}; must be ELFOSABI_FREEBSD (9): put a FreeBSD-target (clang --target=x86_64-unknown-freebsd15.0) object first on the ld.lld -r command line",
                hdr.osabi,
                if hdr.osabi == 0 { " (SYSV)" } else { "" }
            ),
        );
    }
    let elf = match Elf::parse(data) {
        Ok(e) => e,
        Err(e) => {
            out.fail("elf-header", e);
            return out;
        }
    };
    if !elf
        .sections
        .iter()
        .any(|s| s.sh_type == elf::SHT_PROGBITS || s.sh_type == elf::SHT_NOBITS)
    {
        out.fail(
            "elf-header",
            "no PROGBITS/NOBITS section: the kernel linker rejects the file (no contents)",
        );
    }
    match elf.symtabs.len() {
        1 => {}
        0 => {
            out.fail(
                "symtab",
                "no SHT_SYMTAB section: the kernel linker needs exactly one symbol table",
            );
            return out;
        }
        n => out.fail(
            "symtab",
            format!(
                "{n} SHT_SYMTAB sections ({}): the kernel linker accepts exactly one",
                elf.symtabs
                    .iter()
                    .map(|&i| elf.sections[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
    let symtab_index = *elf.symtabs.last().unwrap();
    let nsec = elf.sections.len();
    let funcs = Functions::new(&elf);

    // ---- Section-level rules (6, 8; layout) ---------------------------------
    let mut set_names: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &elf.sections {
        if s.is_loaded() {
            if !s.addralign.is_power_of_two() {
                out.fail(
                    "malformed",
                    format!(
                        "loaded section {} has sh_addralign {}: the kernel linker aligns with sh_addralign-1 as a mask, so it must be a power of two",
                        s.name, s.addralign
                    ),
                );
            }
            if s.name.starts_with("set_") {
                *set_names.entry(s.name.as_str()).or_default() += 1;
            }
        }
        if s.flags & elf::SHF_TLS != 0 {
            out.fail(
                "tls",
                format!(
                    "section {} has SHF_TLS: kernel modules have no thread-local storage",
                    s.name
                ),
            );
        }
        if s.sh_type == elf::SHT_RELA || s.sh_type == elf::SHT_REL {
            continue;
        }
        let n = s.name.as_str();
        let under = |base: &str| n == base || n.starts_with(&format!("{base}."));
        if under(".ctors") || under(".dtors") {
            out.fail(
                "ctors",
                format!("section {n} present: our modules must not rely on static constructors/destructors"),
            );
        }
        if under(".init_array")
            || under(".preinit_array")
            || s.sh_type == elf::SHT_INIT_ARRAY
            || s.sh_type == elf::SHT_PREINIT_ARRAY
        {
            out.fail(
                "init-array",
                format!("section {n} present: the FreeBSD kernel linker never runs .init_array (constructor would silently not run)"),
            );
        }
        if under(".fini_array") || s.sh_type == elf::SHT_FINI_ARRAY {
            out.fail(
                "fini-array",
                format!("section {n} present: the FreeBSD kernel linker never runs .fini_array"),
            );
        }
        if n.starts_with(".eh_frame") || s.sh_type == elf::SHT_X86_64_UNWIND {
            out.fail(
                "eh-frame",
                format!("section {n} present: build with -fno-asynchronous-unwind-tables -fno-unwind-tables / -Cforce-unwind-tables=no, or strip it (objcopy -R .eh_frame -R .rela.eh_frame)"),
            );
        }
    }

    for (name, n) in set_names {
        if n > 1 {
            out.fail(
                "linker-set",
                format!("section {name} appears {n} times: the kernel linker only sees the first one, so the other entries would be ignored (link with ld.lld -r so they merge)"),
            );
        }
    }

    // ---- Rule 2 (+6, 8): relocations -----------------------------------------
    let mut relocs = RelocIndex {
        by_section: HashMap::new(),
    };
    let mut reloc_counts: BTreeMap<u32, usize> = BTreeMap::new();
    let mut referenced: HashSet<u32> = HashSet::new();
    for s in &elf.sections {
        if s.sh_type == elf::SHT_REL {
            out.fail(
                "rel-section",
                format!(
                    "section {} is SHT_REL (relocations without addend); only SHT_RELA is allowed on amd64",
                    s.name
                ),
            );
            continue;
        }
        if s.sh_type != elf::SHT_RELA {
            continue;
        }
        if s.link as usize != symtab_index {
            out.fail(
                "malformed",
                format!(
                    "relocation section {} links to section {} instead of the symbol table",
                    s.name, s.link
                ),
            );
            continue;
        }
        let tidx = s.info as usize;
        if tidx == 0 || tidx >= nsec {
            out.fail(
                "malformed",
                format!(
                    "relocation section {} applies to invalid section {}",
                    s.name, s.info
                ),
            );
            continue;
        }
        let target: &Section = &elf.sections[tidx];
        let relas = match elf.relas(s) {
            Ok(r) => r,
            Err(e) => {
                out.fail("malformed", e);
                continue;
            }
        };
        if !target.is_loaded() {
            out.fail(
                "debug-reloc",
                format!(
                    "relocation section {} ({} entries) applies to non-loaded section {}: strip it (objcopy --strip-debug, -R)",
                    s.name,
                    relas.len(),
                    target.name
                ),
            );
            continue;
        }
        let map = relocs.by_section.entry(tidx).or_default();
        for r in relas {
            if r.sym as usize >= elf.symbols.len() {
                out.fail(
                    "malformed",
                    format!(
                        "{}: relocation at {}+{:#x} uses symbol index {} past the symbol table",
                        s.name, target.name, r.offset, r.sym
                    ),
                );
                continue;
            }
            let w = width_of_reloc(r.rtype);
            if r.offset.checked_add(w).is_none_or(|e| e > target.size) {
                out.fail(
                    "malformed",
                    format!(
                        "{}: relocation at offset {:#x} (+{w} bytes) is outside section {} (size {:#x})",
                        s.name, r.offset, target.name, target.size
                    ),
                );
                continue;
            }
            *reloc_counts.entry(r.rtype).or_default() += 1;
            referenced.insert(r.sym);
            let t = r.rtype;
            let loc = location(&elf, &funcs, tidx, r.offset);
            let what = format!(
                "{} against {}{:+} at {loc}",
                elf::reloc_name(t),
                sym_display(&elf, r.sym, r.addend),
                r.addend
            );
            if elf::is_tls_reloc(t) {
                out.fail("tls", format!("thread-local relocation {what}"));
            } else if elf::is_got_reloc(t) {
                out.fail(
                    "got-reloc",
                    format!("{what}: needs a GOT/PLT the kernel linker does not build (use -Crelocation-model=static -Zplt=yes / -fno-pic)"),
                );
            } else if !elf::is_allowed_reloc(t) {
                out.fail(
                    "reloc-type",
                    format!("{what}: only R_X86_64_NONE/64/PC32/PLT32/32S are allowed"),
                );
            }
            let sym = &elf.symbols[r.sym as usize];
            if is_probe_symbol(&sym.name) {
                out.fail(
                    "stack-probe",
                    format!(
                        "call/reference to stack-probe helper {} at {loc}: kernel stacks are fixed-size (16 KiB); shrink the frame instead",
                        sym.name
                    ),
                );
            }
            if map.insert(r.offset, r).is_some() {
                out.fail(
                    "malformed",
                    format!("two relocations at {}+{:#x}", target.name, r.offset),
                );
            }
        }
    }

    // ---- Rules 3, 4, 6, 8: symbols -------------------------------------------
    let own_sets: HashSet<&str> = elf
        .sections
        .iter()
        .filter(|s| s.is_loaded() && s.name.starts_with("set_"))
        .map(|s| s.name.as_str())
        .collect();
    let mut undef_by_module: BTreeMap<String, usize> = BTreeMap::new();
    let mut undef_total = 0usize;
    for sym in elf.symbols.iter().skip(1) {
        let name = sym.name.as_str();
        if sym.typ() == elf::STT_TLS {
            out.fail(
                "tls",
                format!("symbol {name} is thread-local (STT_TLS): kernel modules have no TLS"),
            );
        }
        if sym.shndx == elf::SHN_COMMON || sym.typ() == elf::STT_COMMON {
            out.fail(
                "common-symbol",
                format!(
                    "symbol {name} is a COMMON symbol (size {}): compile with -fno-common so it gets a real .bss definition",
                    sym.size
                ),
            );
            continue;
        }
        if sym.shndx == elf::SHN_XINDEX
            || (sym.shndx != elf::SHN_UNDEF
                && sym.shndx < elf::SHN_LORESERVE
                && sym.shndx as usize >= nsec)
        {
            out.fail(
                "malformed",
                format!(
                    "symbol {name} has section index {:#x}, outside the section table",
                    sym.shndx
                ),
            );
            continue;
        }
        if !sym.is_undef() {
            continue;
        }
        if name.is_empty() {
            if sym.bind() != elf::STB_LOCAL || referenced.contains(&(sym.index as u32)) {
                out.fail(
                    "undefined-symbol",
                    format!("unnamed undefined symbol #{} cannot be resolved", sym.index),
                );
            }
            continue;
        }
        undef_total += 1;
        let own_set = name
            .strip_prefix("__start_")
            .or_else(|| name.strip_prefix("__stop_"))
            .filter(|set| set.starts_with("set_") && own_sets.contains(set));
        match sym.bind() {
            elf::STB_LOCAL => {
                out.fail(
                    "undefined-symbol",
                    format!(
                        "local symbol {name} is undefined (the kernel linker resolves it to 0)"
                    ),
                );
            }
            elf::STB_WEAK => {
                if own_set.is_some() {
                    *undef_by_module.entry("own linker set".into()).or_default() += 1;
                } else {
                    out.fail(
                        "weak-undef",
                        format!(
                            "{name} is an undefined weak symbol{}; the kernel linker would bind it to 0 or fail",
                            if name.starts_with("__start_set_") || name.starts_with("__stop_set_") {
                                " whose linker set the module does not define"
                            } else {
                                ""
                            }
                        ),
                    );
                }
            }
            _ => {
                if own_set.is_some() {
                    *undef_by_module.entry("own linker set".into()).or_default() += 1;
                } else if let Some(f) = opts.exports.forbidden(name) {
                    out.fail("forbidden-symbol", format!("{name}: {}", f.reason));
                } else if let Some(e) = opts.exports.get(name) {
                    *undef_by_module.entry(e.module.clone()).or_default() += 1;
                } else {
                    out.fail(
                        "undefined-symbol",
                        format!(
                            "{name} is not a known kernel or netgraph.ko export (not in {}); if it really is exported, add it with its header",
                            opts.exports.source
                        ),
                    );
                }
            }
        }
    }

    // ---- Rules 5, 7: code ------------------------------------------------------
    for s in &elf.sections {
        if !(s.is_exec() && s.is_loaded() && s.sh_type == elf::SHT_PROGBITS) || s.size == 0 {
            continue;
        }
        disasm::scan_section(&elf, &funcs, s, &mut out);
    }

    // ---- Rule 9: module metadata and sysinits ----------------------------------
    let expected = opts
        .expect_module
        .clone()
        .unwrap_or_else(|| module_name_from_path(module_name));
    let md = meta::check_metadata(
        &elf,
        &relocs,
        &funcs,
        &opts.exports,
        &expected,
        opts.expect_version,
        &mut out,
    );
    let si = meta::check_sysinits(&elf, &relocs, &funcs, &opts.exports, &mut out);

    // ---- Summary ------------------------------------------------------------------
    let loaded: Vec<String> = elf
        .sections
        .iter()
        .filter(|s| s.is_loaded() && s.size > 0)
        .map(|s| format!("{}({})", s.name, s.size))
        .collect();
    out.summary.push(format!(
        "sections: {} total, {} loaded: {}",
        nsec,
        loaded.len(),
        loaded.join(" ")
    ));
    out.summary.push(format!(
        "relocations: {}",
        if reloc_counts.is_empty() {
            "none".to_string()
        } else {
            reloc_counts
                .iter()
                .map(|(t, n)| format!("{}={n}", elf::reloc_name(*t)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    ));
    out.summary.push(format!(
        "undefined symbols: {undef_total} ({})",
        undef_by_module
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.summary.extend(md);
    out.summary.extend(si);
    out
}
