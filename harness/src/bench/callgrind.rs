//! Callgrind client requests and callgrind output parsing for the bench.
//!
//! The client requests are valgrind.h's amd64 "special instruction" sequence
//! (`rol rdi` by 3, 13, 61 and 51, then `xchg rbx, rbx`, with `rax` pointing
//! at the request block and the result in `rdx`). Outside valgrind the
//! sequence is a handful of register rotations that leave everything as it
//! was and return the default value, so the bench binary needs no valgrind
//! headers and costs nothing when run natively.
//!
//! The child bench process runs under
//! `valgrind --tool=callgrind --collect-atstart=no --dump-instr=yes
//! --compress-pos=no --compress-strings=no`, switches collection on around
//! each measured phase and dumps the phase's costs
//! (`CALLGRIND_DUMP_STATS_AT`). [`parse_dump`] reads such a dump and keeps
//! the self cost (Ir) of every instruction address; the bench then keeps the
//! addresses that lie inside the loaded module images.

use std::collections::HashMap;
use std::ffi::CString;

/// `VG_USERREQ_TOOL_BASE('C','T')` (callgrind.h).
const CT_BASE: usize = ((b'C' as usize) << 24) | ((b'T' as usize) << 16);
/// `VG_USERREQ__DUMP_STATS_AT`.
const DUMP_STATS_AT: usize = CT_BASE + 3;
/// `VG_USERREQ__ZERO_STATS`.
const ZERO_STATS: usize = CT_BASE + 1;
/// `VG_USERREQ__TOGGLE_COLLECT`.
const TOGGLE_COLLECT: usize = CT_BASE + 2;
/// `VG_USERREQ__RUNNING_ON_VALGRIND`.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// `VALGRIND_DO_CLIENT_REQUEST_EXPR(default, req, a1, 0, 0, 0, 0)`.
#[inline(never)]
fn client_request(default: usize, req: usize, a1: usize) -> usize {
    let args: [usize; 6] = [req, a1, 0, 0, 0, 0];
    let mut res = default;
    // SAFETY: the rotations of rdi add up to 128 bits (rdi is unchanged) and
    // `xchg rbx, rbx` changes nothing; under valgrind the sequence is the
    // client-request trap, which reads the six-word block at rax (valid for
    // the duration of the asm) and writes the result to rdx.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") res,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
        );
    }
    std::hint::black_box(&args);
    res
}

/// `RUNNING_ON_VALGRIND`: nonzero under valgrind.
pub fn running_on_valgrind() -> bool {
    client_request(0, RUNNING_ON_VALGRIND, 0) != 0
}

/// `CALLGRIND_ZERO_STATS`.
pub fn zero_stats() {
    client_request(0, ZERO_STATS, 0);
}

/// `CALLGRIND_TOGGLE_COLLECT`.
pub fn toggle_collect() {
    client_request(0, TOGGLE_COLLECT, 0);
}

/// `CALLGRIND_DUMP_STATS_AT(what)`: writes the costs collected since the
/// last dump or zeroing to a new dump file (trigger text `what`).
pub fn dump_stats_at(what: &str) {
    let s = CString::new(what).unwrap_or_default();
    client_request(0, DUMP_STATS_AT, s.as_ptr() as usize);
}

/// One callgrind dump: its trigger text and the self cost (first event,
/// Ir) of every instruction address it lists.
#[derive(Debug, Default, Clone)]
pub struct Dump {
    /// `desc: Trigger: ...` text.
    pub trigger: String,
    /// Instruction address → Ir.
    pub ir: HashMap<u64, u64>,
    /// `totals:`/`summary:` line, if any.
    pub total: Option<u64>,
}

fn parse_pos(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Parses a callgrind dump written with `--dump-instr=yes --dump-line=no
/// --compress-pos=no` (positions are absolute instruction addresses). Cost
/// lines right after `calls=` are inclusive call costs and are skipped.
pub fn parse_dump(text: &str) -> Result<Dump, String> {
    let mut d = Dump::default();
    let mut positions_instr = false;
    let mut skip_next = false;
    for (no, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if skip_next {
            skip_next = false;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.as_bytes()[0];
        if first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*' {
            if !positions_instr {
                return Err(format!(
                    "line {}: cost line before `positions: instr` (was the dump written with --dump-instr=yes?)",
                    no + 1
                ));
            }
            if matches!(first, b'+' | b'-' | b'*') {
                return Err(format!(
                    "line {}: compressed position (run callgrind with --compress-pos=no)",
                    no + 1
                ));
            }
            let mut it = line.split_ascii_whitespace();
            let (Some(pos), cost) = (it.next(), it.next()) else {
                continue;
            };
            let Some(addr) = parse_pos(pos) else {
                return Err(format!("line {}: bad position {pos:?}", no + 1));
            };
            let ir = cost.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            *d.ir.entry(addr).or_insert(0) += ir;
            continue;
        }
        if let Some(rest) = line.strip_prefix("positions:") {
            positions_instr = rest.split_ascii_whitespace().next() == Some("instr");
        } else if line.starts_with("calls=") {
            skip_next = true;
        } else if let Some(rest) = line.strip_prefix("desc: Trigger:") {
            d.trigger = rest.trim().to_string();
        } else if let Some(rest) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
        {
            d.total = rest
                .split_ascii_whitespace()
                .next()
                .and_then(|v| v.parse().ok());
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_callgrind_h() {
        // callgrind.h: DUMP_STATS = TOOL_BASE('C','T'), then ZERO_STATS,
        // TOGGLE_COLLECT, DUMP_STATS_AT in order.
        assert_eq!(CT_BASE, 0x4354_0000);
        assert_eq!(
            (ZERO_STATS, TOGGLE_COLLECT, DUMP_STATS_AT),
            (CT_BASE + 1, CT_BASE + 2, CT_BASE + 3)
        );
        if let Ok(h) = std::fs::read_to_string("/usr/include/valgrind/callgrind.h") {
            let i = h.find("VG_USERREQ__DUMP_STATS = VG_USERREQ_TOOL_BASE('C','T')");
            assert!(i.is_some(), "callgrind.h changed its request numbering");
            let tail = &h[i.unwrap_or(0)..];
            let order: Vec<usize> = [
                "VG_USERREQ__ZERO_STATS",
                "VG_USERREQ__TOGGLE_COLLECT",
                "VG_USERREQ__DUMP_STATS_AT",
            ]
            .iter()
            .map(|n| tail.find(n).unwrap_or(usize::MAX))
            .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        }
    }

    #[test]
    fn natively_the_requests_are_harmless() {
        let _ = running_on_valgrind();
        zero_stats();
        toggle_collect();
        toggle_collect();
        dump_stats_at("x");
    }

    #[test]
    fn parses_instruction_level_dumps() {
        let text = "\
# callgrind format
version: 1
creator: callgrind-3.19.0
desc: Trigger: Client Request: send-connected
positions: instr
events: Ir
ob=/x
fn=foo
0x1000 3
0x1003 2
calls=1 0x2000
0x1005 100
0x1005 1
fn=bar
0x2000 7
totals: 113
";
        let d = parse_dump(text).expect("parse");
        assert_eq!(d.trigger, "Client Request: send-connected");
        assert_eq!(d.ir.get(&0x1000), Some(&3));
        assert_eq!(d.ir.get(&0x1005), Some(&1), "inclusive call cost skipped");
        assert_eq!(d.ir.get(&0x2000), Some(&7));
        assert_eq!(d.total, Some(113));
        assert!(parse_dump("positions: line\nevents: Ir\n1 2\n").is_err());
        assert!(parse_dump("positions: instr\nevents: Ir\n+3 2\n").is_err());
    }
}
