//! The callgrind child run of `ngharness bench`: instructions per packet
//! inside each module image, the top functions, and the loops inside them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::*;

/// One function's instruction profile: its mangled symbol and (offset, Ir)
/// of every instruction executed.
pub(super) type Profile = (String, Vec<(usize, u64)>);

/// Instructions per packet: (case, module) → Ir/packet, and the top
/// functions (case, module) → [(Ir/packet, name)].
#[derive(Default)]
pub(super) struct Instr {
    pub(super) per_pkt: BTreeMap<(Case, String), f64>,
    /// Instructions of the whole process per packet (per round trip for
    /// the round-trip cases), by case.
    pub(super) total: BTreeMap<Case, f64>,
    pub(super) top: BTreeMap<(Case, String), Vec<(f64, String)>>,
    /// (case, module, demangled function) → (mangled symbol, [(offset, Ir)]).
    pub(super) ins: BTreeMap<(Case, String, String), Profile>,
    pub(super) packets: usize,
    pub(super) secs: f64,
}

pub(super) fn find_valgrind() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("valgrind"))
        .find(|p| p.is_file())
}

/// Runs the callgrind child on `kos` (`keep`: the suffix of the file
/// `NGBENCH_KEEP` names for this run's raw results).
pub(super) fn run_callgrind(
    o: &Opts,
    valgrind: &Path,
    kos: &[PathBuf],
    keep: &str,
) -> Result<Instr, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = std::env::temp_dir().join(format!("ngbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cg_out = dir.join("cg.out");
    let result = dir.join("result.tsv");
    let start = Instant::now();
    let mut cmd = Command::new(valgrind);
    cmd.arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg("--dump-instr=yes")
        .arg("--dump-line=no")
        .arg("--compress-pos=no")
        .arg("--compress-strings=no")
        .arg(format!("--callgrind-out-file={}", cg_out.display()))
        .arg(&exe)
        .arg("bench")
        .arg("--child")
        .arg(&result)
        .arg("--cg-packets")
        .arg(o.cg_packets.to_string())
        .arg("--warmup")
        .arg(o.warmup.min(5).to_string())
        .arg("--size")
        .arg(o.size.to_string())
        .args(kos)
        .env("NGBENCH_CG_OUT", &cg_out);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", valgrind.display()))?;
    let text = std::fs::read_to_string(&result);
    if let Ok(k) = std::env::var("NGBENCH_KEEP") {
        let _ = std::fs::copy(&result, format!("{k}{keep}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!(
            "the callgrind run failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = text.map_err(|e| format!("{}: {e}", result.display()))?;
    let mut ins = Instr {
        packets: o.cg_packets,
        secs: start.elapsed().as_secs_f64(),
        ..Instr::default()
    };
    let n = o.cg_packets as f64;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["ir", case, m, ir, _] => {
                if let (Some(c), Ok(ir)) = (Case::from_key(case), ir.parse::<f64>()) {
                    ins.per_pkt.insert((c, m.to_string()), ir / n);
                }
            }
            ["ins", case, m, sym, off, ir] => {
                if let (Some(c), Ok(off), Ok(ir)) = (
                    Case::from_key(case),
                    off.parse::<usize>(),
                    ir.parse::<u64>(),
                ) {
                    ins.ins
                        .entry((c, m.to_string(), short_name(sym)))
                        .or_insert_with(|| (sym.to_string(), Vec::new()))
                        .1
                        .push((off, ir));
                }
            }
            ["total", case, total] => {
                if let (Some(c), Ok(t)) = (Case::from_key(case), total.parse::<f64>()) {
                    ins.total.insert(c, t / n);
                }
            }
            ["fn", case, m, ir, name] => {
                if let (Some(c), Ok(ir)) = (Case::from_key(case), ir.parse::<f64>()) {
                    ins.top
                        .entry((c, m.to_string()))
                        .or_default()
                        .push((ir / n, name.to_string()));
                }
            }
            _ => {}
        }
    }
    for v in ins.top.values_mut() {
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    for v in ins.ins.values_mut() {
        v.1.sort_unstable();
    }
    Ok(ins)
}

/// A run of adjacent instructions each executed at least twice per packet:
/// a loop body (instructions a branch skips in some iterations included).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HotRange {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) instructions: usize,
    pub(super) times: f64,
    pub(super) ir: f64,
}

/// Loops in one function's instruction profile (offset, Ir), costliest
/// first, with `times` the highest per-packet count in the run.
/// Instructions are adjacent when their offsets differ by at most 15 bytes
/// (the longest x86 instruction); up to three instructions run less often
/// (a branch inside the loop body) stay in the loop when it goes on after
/// them with the same count.
pub(super) fn hot_ranges(ins: &[(usize, u64)], packets: usize) -> Vec<HotRange> {
    let n = packets as f64;
    let times = |ir: u64| (ir as f64 / n * 100.0).round() / 100.0;
    let mut out: Vec<HotRange> = Vec::new();
    let mut cur: Option<HotRange> = None;
    // Less frequent instructions after the current range, not yet known to
    // be inside the loop.
    let mut pending: Vec<(usize, u64)> = Vec::new();
    for &(off, ir) in ins {
        let t = times(ir);
        let last = pending
            .last()
            .map_or(cur.as_ref().map(|r| r.end), |p| Some(p.0));
        let adjacent = last.is_some_and(|e| off - e <= 15);
        if cur.is_some() && adjacent && t < 2.0 && pending.len() < 3 {
            pending.push((off, ir));
            continue;
        }
        if let Some(r) = cur.as_mut() {
            if adjacent && (pending.is_empty() || t == r.times) {
                for (po, pir) in pending.drain(..) {
                    r.end = po;
                    r.instructions += 1;
                    r.ir += pir as f64 / n;
                }
                r.end = off;
                r.instructions += 1;
                r.ir += ir as f64 / n;
                r.times = r.times.max(t);
                continue;
            }
        }
        pending.clear();
        if let Some(r) = cur.take() {
            out.push(r);
        }
        if t >= 2.0 {
            cur = Some(HotRange {
                start: off,
                end: off,
                instructions: 1,
                times: t,
                ir: ir as f64 / n,
            });
        }
    }
    out.extend(cur);
    out.retain(|r| r.instructions >= 3);
    out.sort_by(|a, b| b.ir.total_cmp(&a.ir));
    out
}
