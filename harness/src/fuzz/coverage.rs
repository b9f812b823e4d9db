//! The coverage report: which functions and edges of the modules' own code
//! no test reached.
//!
//! The tests run against modules built with one flag per edge and line
//! tables (`scripts/build-ko.sh <..> cov`); every harness process writes
//! what it reached to `NGHARNESS_COVERAGE_DIR` (`kern::cov`). This joins
//! those files with the modules' PC tables: record `i` of the
//! `__sancov_pcs` sections (in section order, as the counters) is a
//! relocation against the function's section (`.text.<symbol>`) plus the
//! edge's offset. Functions are named by demangling the section name,
//! edges by `addr2line -j SECTION` on the unstripped module (`.ko.full`),
//! keeping the innermost location in the project's own sources.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use kelf::{rd_cstr, Header, Rela, Shdr, Sym};

const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const STT_SECTION: u8 = 3;
const R_X86_64_64: u32 = 1;

/// One instrumented edge.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Section of the function (`.text.<mangled>`).
    pub section: String,
    pub offset: u64,
    /// The function's entry block.
    pub entry: bool,
}

/// The PC table of an instrumented module: its edges in counter order.
pub fn pc_table(ko: &Path) -> Result<Vec<Edge>, String> {
    let d = std::fs::read(ko).map_err(|e| format!("{}: {e}", ko.display()))?;
    let h = Header::parse(&d)?;
    let sh = Shdr::read_table(&d, h.e_shoff as usize, h.e_shnum as usize)
        .map_err(|e| format!("{}: section headers: {e:?}", ko.display()))?;
    let shstr = sh
        .get(h.e_shstrndx as usize)
        .and_then(Shdr::file_range)
        .and_then(|r| d.get(r))
        .ok_or("no section names")?;
    let name = |s: &Shdr| {
        rd_cstr(shstr, s.name as usize)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let symtab = sh
        .iter()
        .find(|s| s.sh_type == SHT_SYMTAB)
        .ok_or("no symbol table")?;
    let syms = Sym::read_all(
        d.get(symtab.file_range().ok_or("symtab")?)
            .ok_or("symtab")?,
    );
    // Records of each __sancov_pcs section, by section index.
    let mut relas: HashMap<usize, Vec<Rela>> = HashMap::new();
    for s in &sh {
        if s.sh_type == SHT_RELA {
            let r = Rela::read_all(d.get(s.file_range().ok_or("rela")?).ok_or("rela")?);
            relas.insert(s.info as usize, r);
        }
    }
    let mut out = Vec::new();
    for (i, s) in sh.iter().enumerate() {
        if name(s) != "__sancov_pcs" {
            continue;
        }
        let mut rs: Vec<&Rela> = relas
            .get(&i)
            .map(|v| {
                v.iter()
                    .filter(|r| r.rtype == R_X86_64_64 && r.offset % 16 == 0)
                    .collect()
            })
            .unwrap_or_default();
        rs.sort_by_key(|r| r.offset);
        let flags_of = |k: u64| {
            s.file_range()
                .and_then(|r| d.get(r))
                .and_then(|b| kelf::rd_u64(b, (k * 16 + 8) as usize))
                .unwrap_or(0)
        };
        for r in rs {
            let sym = syms.get(r.sym as usize).ok_or("bad symbol index")?;
            let (sec, base) = if sym.typ() == STT_SECTION {
                (sym.shndx as usize, 0)
            } else {
                (sym.shndx as usize, sym.value)
            };
            let secname = sh.get(sec).map(name).unwrap_or_default();
            out.push(Edge {
                section: secname,
                offset: base.wrapping_add(r.addend as u64),
                entry: flags_of(r.offset / 16) & 1 != 0,
            });
        }
    }
    Ok(out)
}

/// The reached flags of module `filename` (`ng_ksocket.ko`): every dump
/// in `dir` of that module, or-ed together; and the number of dumps.
pub fn reached(dir: &Path, filename: &str, edges: usize) -> (Vec<bool>, usize) {
    let mut v = vec![false; edges];
    let mut n = 0;
    let prefix = format!("{filename}.");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if !f.starts_with(&prefix) || !f.ends_with(".cov") {
                continue;
            }
            if let Ok(b) = std::fs::read(e.path()) {
                n += 1;
                for (r, &c) in v.iter_mut().zip(&b) {
                    *r |= c != 0;
                }
            }
        }
    }
    (v, n)
}

fn demangle(section: &str) -> String {
    let sym = section.strip_prefix(".text.").unwrap_or(section);
    format!("{:#}", rustc_demangle::demangle(sym))
}

/// Source locations of `offsets` in `section` of `ko`: the innermost
/// location in the project's sources (else the innermost one).
fn lines(ko: &Path, section: &str, offsets: &[u64]) -> Vec<String> {
    if offsets.is_empty() {
        return Vec::new();
    }
    let out = Command::new("addr2line")
        .args(["-a", "-i", "-e"])
        .arg(ko)
        .args(["-j", section])
        .args(offsets.iter().map(|o| format!("{o:#x}")))
        .output();
    let Ok(out) = out else {
        return offsets.iter().map(|o| format!("+{o:#x}")).collect();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut res = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let flush = |cur: &mut Vec<String>, res: &mut Vec<String>| {
        if let Some(first) = cur.first().cloned() {
            let own = cur
                .iter()
                .find(|l| l.starts_with("ngsock/src/") || l.starts_with("src/"))
                .cloned();
            res.push(own.unwrap_or(first));
        }
        cur.clear();
    };
    let mut started = false;
    for l in text.lines() {
        if l.starts_with("0x") {
            if started {
                flush(&mut cur, &mut res);
            }
            started = true;
        } else {
            cur.push(l.split(" (discriminator").next().unwrap_or(l).to_string());
        }
    }
    flush(&mut cur, &mut res);
    res.resize(offsets.len(), "?".into());
    res
}

/// The report for the modules `kos` (`.ko.full` files of the `cov`
/// flavour) from the dumps in `dir`.
pub fn report(dir: &Path, kos: &[PathBuf]) -> Result<String, String> {
    let mut out = String::new();
    for ko in kos {
        let edges = pc_table(ko)?;
        let file = ko
            .file_name()
            .map(|f| f.to_string_lossy().trim_end_matches(".full").to_string())
            .unwrap_or_default();
        let (hit, dumps) = reached(dir, &file, edges.len());
        // Per function: (entry reached, edges, unreached offsets).
        let mut funcs: BTreeMap<String, (bool, usize, Vec<u64>)> = BTreeMap::new();
        for (e, &h) in edges.iter().zip(&hit) {
            let f = funcs.entry(e.section.clone()).or_default();
            f.1 += 1;
            if e.entry && h {
                f.0 = true;
            }
            if !h {
                f.2.push(e.offset);
            }
        }
        let total = edges.len();
        let reached_n = hit.iter().filter(|&&h| h).count();
        let fn_reached = funcs.values().filter(|f| f.0).count();
        out.push_str(&format!(
            "{file}: {reached_n} of {total} edges reached ({:.1}%), {fn_reached} of {} functions entered ({dumps} harness processes)\n",
            100.0 * reached_n as f64 / total.max(1) as f64,
            funcs.len()
        ));
        let mut never: Vec<(String, String)> = Vec::new();
        let mut partial: Vec<(String, usize, usize, Vec<String>)> = Vec::new();
        for (sec, (entered, n, missed)) in &funcs {
            if missed.is_empty() {
                continue;
            }
            if !entered {
                let at = lines(ko, sec, &[0]).pop().unwrap_or_default();
                never.push((demangle(sec), at));
            } else {
                let mut ls = lines(ko, sec, missed);
                ls.sort();
                ls.dedup();
                partial.push((demangle(sec), missed.len(), *n, ls));
            }
        }
        out.push_str(&format!("  functions never entered ({}):\n", never.len()));
        for (f, at) in &never {
            out.push_str(&format!("    {f}  [{at}]\n"));
        }
        out.push_str(&format!(
            "  functions with unreached edges ({}):\n",
            partial.len()
        ));
        for (f, m, n, ls) in &partial {
            out.push_str(&format!("    {f}: {m} of {n} edges unreached\n"));
            for l in ls {
                out.push_str(&format!("      {l}\n"));
            }
        }
    }
    Ok(out)
}

/// `ngharness coverage DATADIR MODULE.ko.full...`.
pub fn cli(args: &[String]) -> i32 {
    let [dir, kos @ ..] = args else {
        eprintln!("usage: ngharness coverage DATADIR MODULE.ko.full...");
        return 2;
    };
    if kos.is_empty() {
        eprintln!("usage: ngharness coverage DATADIR MODULE.ko.full...");
        return 2;
    }
    let kos: Vec<PathBuf> = kos.iter().map(PathBuf::from).collect();
    match report(Path::new(dir), &kos) {
        Ok(r) => {
            print!("{r}");
            0
        }
        Err(e) => {
            eprintln!("ngharness coverage: {e}");
            1
        }
    }
}
