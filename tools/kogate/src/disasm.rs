//! Rules 5 and 7: disassemble executable sections with iced-x86 and reject
//! FPU/SIMD instructions and oversized (or variable-size) stack frames.

use iced_x86::{
    CpuidFeature, Decoder, DecoderOptions, Formatter, Instruction, InstructionInfoFactory,
    IntelFormatter, Mnemonic, OpKind, Register,
};

use crate::check::{location, Functions, Outcome, MAX_FRAME};
use crate::elf::{Elf, Section};

/// Why an instruction touches FPU/SIMD state, or None if it does not.
pub fn fpu_reason(ins: &Instruction, factory: &mut InstructionInfoFactory) -> Option<String> {
    use Mnemonic::*;
    if matches!(
        ins.mnemonic(),
        Ldmxcsr | Stmxcsr | Vldmxcsr | Vstmxcsr | Emms | Femms
    ) {
        return Some("reads or writes MXCSR/MMX state".into());
    }
    for f in ins.cpuid_features() {
        use CpuidFeature::*;
        let why = match f {
            FPU | FPU287 | FPU287XL_ONLY | FPU387 | FPU387SL_ONLY | CYRIX_FPU => "x87 instruction",
            MMX | D3NOW | D3NOWEXT | CYRIX_D3NOW => "MMX/3DNow! instruction",
            FXSR | XSAVE | XSAVEC | XSAVEOPT | XSAVES => "saves/restores FPU/SIMD state",
            FMA | FMA4 | F16C | XOP | KNC | VAES | VPCLMULQDQ => "AVX-class instruction",
            _ => {
                let n = format!("{f:?}");
                if n.starts_with("AVX") || n.starts_with("AMX") {
                    "AVX/AMX instruction"
                } else {
                    continue;
                }
            }
        };
        return Some(format!("{why}, CPUID feature {f:?}"));
    }
    let info = factory.info(ins);
    for u in info.used_registers() {
        let r = u.register();
        if r.is_xmm()
            || r.is_ymm()
            || r.is_zmm()
            || r.is_mm()
            || r.is_st()
            || r.is_k()
            || r.is_tmm()
        {
            return Some(format!("uses {}", format!("{r:?}").to_lowercase()));
        }
    }
    None
}

fn is_imm(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

enum StackAdj {
    None,
    Fixed(i64),
    Dynamic,
}

/// How much an instruction grows the stack by explicit rsp arithmetic
/// (push/call are ignored: they are small and balanced). `Dynamic` means a
/// run-time sized allocation.
fn stack_adjustment(ins: &Instruction) -> StackAdj {
    let m = ins.mnemonic();
    if m == Mnemonic::Enter {
        return StackAdj::Fixed(ins.immediate(0) as i64 & 0xffff);
    }
    if ins.op_count() < 2
        || ins.op_kind(0) != OpKind::Register
        || ins.op0_register() != Register::RSP
    {
        return StackAdj::None;
    }
    match m {
        Mnemonic::Sub | Mnemonic::Add => {
            let sign = if m == Mnemonic::Sub { 1 } else { -1 };
            if is_imm(ins.op_kind(1)) {
                StackAdj::Fixed(sign * ins.immediate(1) as i64)
            } else if m == Mnemonic::Sub {
                StackAdj::Dynamic
            } else {
                StackAdj::None
            }
        }
        // `mov rsp, reg` (not the frame pointer): a VLA/alloca result.
        Mnemonic::Mov => {
            if ins.op_kind(1) == OpKind::Register && ins.op1_register() != Register::RBP {
                StackAdj::Dynamic
            } else {
                StackAdj::None
            }
        }
        Mnemonic::Lea => {
            if ins.memory_base() == Register::RSP && ins.memory_index() == Register::None {
                StackAdj::Fixed(-(ins.memory_displacement64() as i64))
            } else {
                StackAdj::None
            }
        }
        _ => StackAdj::None,
    }
}

pub fn scan_section(elf: &Elf, funcs: &Functions, s: &Section, out: &mut Outcome) {
    let bytes = elf.bytes(s);
    let len = bytes.len() as u64;
    let mut starts = funcs.starts(s.index);
    starts.retain(|&x| x < len);
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut factory = InstructionInfoFactory::new();
    let mut fmt = IntelFormatter::new();
    let mut text = String::new();
    for (ci, &start) in starts.iter().enumerate() {
        let end = starts.get(ci + 1).copied().unwrap_or(len);
        let chunk = &bytes[start as usize..end as usize];
        let fname = funcs
            .at(s.index, start)
            .map(|f| format!("function {}", f.name))
            .unwrap_or_else(|| format!("code at {}+{start:#x}", s.name));
        let mut dec = Decoder::with_ip(64, chunk, start, DecoderOptions::NONE);
        let mut invalid_reported = false;
        let mut net: i64 = 0;
        let mut max_net: i64 = 0;
        let mut biggest: Option<(i64, u64, String)> = None;
        let mut dynamic: Option<(u64, String)> = None;
        let mut ins = Instruction::default();
        while dec.can_decode() {
            dec.decode_out(&mut ins);
            let off = ins.ip();
            if ins.is_invalid() {
                if !invalid_reported {
                    out.fail(
                        "disasm",
                        format!(
                            "undecodable bytes at {}: cannot prove the code free of FPU/SIMD use (data in an executable section?)",
                            location(elf, funcs, s.index, off)
                        ),
                    );
                    invalid_reported = true;
                }
                continue;
            }
            if let Some(why) = fpu_reason(&ins, &mut factory) {
                text.clear();
                fmt.format(&ins, &mut text);
                out.fail(
                    "fpu",
                    format!(
                        "`{text}` at {}: {why}; kernel code must not touch x87/MMX/SSE/AVX state (build with -mno-sse -msoft-float / the softfloat x86_64-unknown-none target)",
                        location(elf, funcs, s.index, off)
                    ),
                );
            }
            match stack_adjustment(&ins) {
                StackAdj::None => {}
                StackAdj::Fixed(d) => {
                    if d > biggest.as_ref().map_or(0, |b| b.0) {
                        text.clear();
                        fmt.format(&ins, &mut text);
                        biggest = Some((d, off, text.clone()));
                    }
                    net += d;
                    max_net = max_net.max(net);
                }
                StackAdj::Dynamic => {
                    if dynamic.is_none() {
                        text.clear();
                        fmt.format(&ins, &mut text);
                        dynamic = Some((off, text.clone()));
                    }
                }
            }
        }
        match biggest {
            Some((d, off, t)) if d > MAX_FRAME => out.fail(
                "stack-frame",
                format!(
                    "{fname}: stack adjustment of {d} bytes (`{t}` at {}+{off:#x}) exceeds {MAX_FRAME}",
                    s.name
                ),
            ),
            _ if max_net > MAX_FRAME => out.fail(
                "stack-frame",
                format!(
                    "{fname}: stack adjustments add up to {max_net} bytes, more than {MAX_FRAME}"
                ),
            ),
            _ => {}
        }
        if let Some((off, t)) = dynamic {
            out.fail(
                "stack-frame",
                format!(
                    "{fname}: variable-size stack allocation (`{t}` at {}+{off:#x}); use malloc(9) instead of VLAs/alloca",
                    s.name
                ),
            );
        }
    }
}
