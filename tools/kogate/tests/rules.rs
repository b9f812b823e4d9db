//! One test per rule: a deliberately bad object must fail with that rule (and
//! only that rule, unless the defect necessarily breaks two), and the good
//! object must pass every rule.

mod common;
use common::*;

// ---------------------------------------------------------------------------
// The good object
// ---------------------------------------------------------------------------

#[test]
fn good_object_passes_every_rule() {
    let ko = Obj::new("good").build();
    let out = assert_passes(&ko, &[]);
    assert!(
        out.contains(&format!("kogate: {}: OK", ko.display())),
        "{out}"
    );
    for want in [
        "relocations: R_X86_64_64=",
        "R_X86_64_PLT32=",
        "R_X86_64_32S=",
        "undefined symbols: ",
        "kernel 4",
        "netgraph.ko 3",
        "own linker set 6",
        "modmetadata: DEPEND  kernel min=1500068 pref=1500068 max=1599999",
        "modmetadata: DEPEND  netgraph min=12 pref=12 max=12",
        "modmetadata: MODULE  ng_good (moduledata good_mod: name \"ng_good\", handler good_modevent, priv NULL)",
        "modmetadata: VERSION ng_good 1",
        "SYSINIT  : subsystem=0x7000000 order=0x1000000 func=module_register_init (kernel) udata=&good_mod",
        "SYSINIT  : subsystem=0x7000000 order=0x2000000 func=good_late_init udata=NULL",
        "SYSUNINIT: subsystem=0x7000000 order=0x1000000 func=good_uninit udata=&good_mod",
    ] {
        assert!(out.contains(want), "summary lacks {want:?}:\n{out}");
    }
}

#[test]
fn good_object_linked_with_ld_lld_passes() {
    // The real modules are `ld.lld -r` output; make sure that shape passes too.
    let obj = Obj::new("good_lld").build();
    let ko = obj.with_file_name("ng_good.lld.ko");
    let o = std::process::Command::new("ld.lld-19")
        .args(["-r", "-o"])
        .arg(&ko)
        .arg(&obj)
        .output();
    match o {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "ld.lld-19 -r failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            eprintln!("skipping: ld.lld-19 not available ({e})");
            return;
        }
    }
    assert_passes(&ko, &[]);
}

// ---------------------------------------------------------------------------
// Rule 1: ELF header, symbol table
// ---------------------------------------------------------------------------

fn good(test: &str) -> std::path::PathBuf {
    Obj::new(test).build()
}

#[test]
fn elf_header_wrong_machine() {
    let ko = patched(&good("hdr_machine"), "ng_good.m.ko", |d| {
        d[18..20].copy_from_slice(&3u16.to_le_bytes())
    });
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("e_machine is 3 (EM_386)"), "{err}");
}

#[test]
fn elf_header_wrong_osabi() {
    let ko = patched(&good("hdr_osabi"), "ng_good.o.ko", |d| d[7] = 0);
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("EI_OSABI is 0 (SYSV)"), "{err}");
}

#[test]
fn elf_header_not_relocatable() {
    let ko = patched(&good("hdr_type"), "ng_good.t.ko", |d| {
        d[16..18].copy_from_slice(&2u16.to_le_bytes())
    });
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("e_type is 2 (ET_EXEC)"), "{err}");
}

#[test]
fn elf_header_elfclass32() {
    let ko = patched(&good("hdr_class"), "ng_good.c.ko", |d| d[4] = 1);
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("ELFCLASS32"), "{err}");
}

#[test]
fn elf_header_big_endian() {
    let ko = patched(&good("hdr_data"), "ng_good.d.ko", |d| d[5] = 2);
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("big-endian"), "{err}");
}

#[test]
fn elf_header_bad_version() {
    let ko = patched(&good("hdr_version"), "ng_good.v.ko", |d| d[6] = 0);
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("EV_CURRENT"), "{err}");
}

#[test]
fn elf_header_not_elf() {
    let dir = Obj::new("hdr_garbage").dir();
    let ko = dir.join("ng_good.ko");
    std::fs::write(&ko, b"this is not an ELF object at all\n").unwrap();
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("not an ELF file"), "{err}");
}

#[test]
fn elf_header_truncated_section_table() {
    let src = good("hdr_trunc");
    let len = std::fs::read(&src).unwrap().len();
    let ko = patched(&src, "ng_good.tr.ko", |d| d.truncate(len - 100));
    let err = assert_rules(&ko, &[], &["elf-header"]);
    assert!(err.contains("past end of file"), "{err}");
}

#[test]
fn symtab_two_symbol_tables() {
    let ko = patched(&good("symtab_two"), "ng_good.s2.ko", |d| {
        set_section_type(d, ".note.GNU-stack", kogate::elf::SHT_SYMTAB)
    });
    let err = assert_rules(&ko, &[], &["symtab"]);
    assert!(err.contains("2 SHT_SYMTAB sections"), "{err}");
}

#[test]
fn symtab_missing() {
    let ko = patched(&good("symtab_none"), "ng_good.s0.ko", |d| {
        set_section_type(d, ".symtab", kogate::elf::SHT_PROGBITS)
    });
    let err = assert_rules(&ko, &[], &["symtab"]);
    assert!(err.contains("no SHT_SYMTAB"), "{err}");
}

// ---------------------------------------------------------------------------
// Rule 2: relocations
// ---------------------------------------------------------------------------

#[test]
fn rel_section_rejected() {
    let ko = patched(&good("rel_section"), "ng_good.rel.ko", |d| {
        set_section_type(d, ".rela.text", kogate::elf::SHT_REL)
    });
    let err = assert_rules(&ko, &[], &["rel-section"]);
    assert!(err.contains("section .rela.text is SHT_REL"), "{err}");
}

#[test]
fn reloc_type_r_x86_64_32_and_pc64() {
    let ko = Obj::new("reloc_type")
        .code(
            r#"__asm__(".text\n.globl abs32\n.type abs32,@function\nabs32:\n  movl $good_item, %eax\n  ret\n.size abs32, .-abs32\n"
                       ".data\n.globl pc64\npc64:\n  .quad good_send - .\n");"#,
        )
        .build();
    let err = assert_rules(&ko, &[], &["reloc-type"]);
    let lines = lines_of(&err, "reloc-type");
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        err.contains("R_X86_64_32 against section .rodata (good_item)+"),
        "{err}"
    );
    assert!(err.contains("(in abs32+0x1)"), "{err}");
    assert!(err.contains("R_X86_64_PC64 against good_send"), "{err}");
}

#[test]
fn debug_relocs_flagged() {
    let ko = Obj::new("debug_reloc").flag("-g").build();
    let err = assert_rules(&ko, &[], &["debug-reloc"]);
    assert!(err.contains(".rela.debug_info"), "{err}");
    assert!(
        err.contains("applies to non-loaded section .debug_info"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Rule 3: weak undefined symbols
// ---------------------------------------------------------------------------

#[test]
fn weak_undefined_rejected() {
    let ko = Obj::new("weak_undef")
        .code("extern int maybe_there __attribute__((weak));\nint read_maybe(void) { return &maybe_there ? maybe_there : 0; }")
        .build();
    let err = assert_rules(&ko, &[], &["weak-undef"]);
    assert!(
        err.contains("maybe_there is an undefined weak symbol"),
        "{err}"
    );
}

#[test]
fn weak_start_stop_without_own_set_rejected() {
    let ko = Obj::new("weak_set")
        .code("extern const void *__start_set_missing[] __attribute__((weak));\nconst void *first_missing(void) { return __start_set_missing[0]; }")
        .build();
    let err = assert_rules(&ko, &[], &["weak-undef"]);
    assert!(err.contains("__start_set_missing is an undefined weak symbol whose linker set the module does not define"), "{err}");
}

// ---------------------------------------------------------------------------
// Rule 4: undefined symbols must be known exports; forbidden ones
// ---------------------------------------------------------------------------

#[test]
fn undefined_unknown_symbol() {
    let ko = Obj::new("undef_unknown")
        .code("extern void not_a_kernel_function(int);\nvoid call_it(void) { not_a_kernel_function(1); }")
        .build();
    let err = assert_rules(&ko, &[], &["undefined-symbol"]);
    assert!(
        err.contains("not_a_kernel_function is not a known kernel or netgraph.ko export"),
        "{err}"
    );
}

#[test]
fn forbidden_invariants_symbol() {
    let ko = Obj::new("forbidden_mtx_assert")
        .code("extern void __mtx_assert(const volatile unsigned long *, int, const char *, int);\nvoid check_owned(unsigned long *m) { __mtx_assert(m, 4, \"x.c\", 1); }")
        .build();
    let err = assert_rules(&ko, &[], &["forbidden-symbol"]);
    assert!(err.contains("__mtx_assert: INVARIANTS-only"), "{err}");
}

#[test]
fn forbidden_witness_wildcard_and_inline_only() {
    let ko = Obj::new("forbidden_witness")
        .code("extern void witness_warn(int, void *, const char *, ...);\nextern void *m_gethdr(int, short);\nvoid *w(void) { witness_warn(0, 0, \"x\"); return m_gethdr(1, 1); }")
        .build();
    let err = assert_rules(&ko, &[], &["forbidden-symbol"]);
    assert!(err.contains("witness_warn: WITNESS-only"), "{err}");
    assert!(
        err.contains("m_gethdr: static inline in sys/mbuf.h"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Rule 5: FPU / SIMD
// ---------------------------------------------------------------------------

#[test]
fn fpu_sse_double_math() {
    let ko = Obj::new("fpu_sse")
        .with_sse()
        .code("double scale(double a, double b) { return a * b + 1.5; }")
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert!(err.contains("(in scale+0x"), "{err}");
    assert!(err.contains("xmm0"), "{err}");
}

#[test]
fn fpu_x87_instructions() {
    let ko = Obj::new("fpu_x87")
        .code(r#"__asm__(".text\n.globl x87\n.type x87,@function\nx87:\n  fninit\n  fld1\n  fstp %st(0)\n  ret\n.size x87, .-x87\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert_eq!(lines_of(&err, "fpu").len(), 3, "{err}");
    assert!(err.contains("x87 instruction"), "{err}");
}

#[test]
fn fpu_mmx_instructions() {
    let ko = Obj::new("fpu_mmx")
        .code(r#"__asm__(".text\n.globl mmx\n.type mmx,@function\nmmx:\n  movq %mm0, %mm1\n  paddb %mm1, %mm0\n  emms\n  ret\n.size mmx, .-mmx\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert_eq!(lines_of(&err, "fpu").len(), 3, "{err}");
}

#[test]
fn fpu_state_save_and_mxcsr() {
    let ko = Obj::new("fpu_state")
        .code(r#"__asm__(".text\n.globl fpstate\n.type fpstate,@function\nfpstate:\n  ldmxcsr (%rdi)\n  stmxcsr (%rdi)\n  fxsave (%rdi)\n  fxrstor (%rdi)\n  xsave (%rdi)\n  xrstor (%rdi)\n  ret\n.size fpstate, .-fpstate\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert_eq!(lines_of(&err, "fpu").len(), 6, "{err}");
    assert!(err.contains("MXCSR"), "{err}");
    assert!(err.contains("saves/restores FPU/SIMD state"), "{err}");
}

#[test]
fn fpu_avx_instructions() {
    let ko = Obj::new("fpu_avx")
        .code(r#"__asm__(".text\n.globl avx\n.type avx,@function\navx:\n  vpxor %ymm0, %ymm0, %ymm0\n  vzeroupper\n  kmovw %k1, %eax\n  ret\n.size avx, .-avx\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert_eq!(lines_of(&err, "fpu").len(), 3, "{err}");
}

// ---------------------------------------------------------------------------
// Rule 6: TLS
// ---------------------------------------------------------------------------

#[test]
fn tls_thread_local_variable() {
    let ko = Obj::new("tls")
        .code("__thread int tls_counter;\nint bump(void) { return ++tls_counter; }")
        .build();
    let err = assert_rules(&ko, &[], &["tls"]);
    assert!(err.contains("section .tbss has SHF_TLS"), "{err}");
    assert!(
        err.contains("symbol tls_counter is thread-local (STT_TLS)"),
        "{err}"
    );
    assert!(
        err.contains("thread-local relocation R_X86_64_TPOFF32"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Rule 7: stack frames
// ---------------------------------------------------------------------------

const CONSUME: &str = "__attribute__((noinline)) static void consume(char *p) { __asm__ volatile(\"\" :: \"r\"(p) : \"memory\"); }";

#[test]
fn stack_frame_4k_local_array() {
    let ko = Obj::new("stack_4k")
        .code(CONSUME)
        .code("void big_frame(void) { char buf[4096]; consume(buf); }")
        .build();
    let err = assert_rules(&ko, &[], &["stack-frame"]);
    assert!(
        err.contains("function big_frame: stack adjustment of 4096 bytes"),
        "{err}"
    );
}

#[test]
fn stack_frame_add_negative_and_lea() {
    let ko = Obj::new("stack_asm")
        .code(r#"__asm__(".text\n.globl addneg\n.type addneg,@function\naddneg:\n  add $-4096, %rsp\n  sub $-4096, %rsp\n  ret\n.size addneg, .-addneg\n"
                  ".globl leaframe\n.type leaframe,@function\nleaframe:\n  lea -3000(%rsp), %rsp\n  lea 3000(%rsp), %rsp\n  ret\n.size leaframe, .-leaframe\n"
                  ".globl stepwise\n.type stepwise,@function\nstepwise:\n  sub $2000, %rsp\n  sub $2000, %rsp\n  add $4000, %rsp\n  ret\n.size stepwise, .-stepwise\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["stack-frame"]);
    assert_eq!(lines_of(&err, "stack-frame").len(), 3, "{err}");
    assert!(
        err.contains("function addneg: stack adjustment of 4096 bytes"),
        "{err}"
    );
    assert!(
        err.contains("function leaframe: stack adjustment of 3000 bytes"),
        "{err}"
    );
    assert!(
        err.contains("function stepwise: stack adjustments add up to 4000 bytes"),
        "{err}"
    );
}

#[test]
fn stack_frame_variable_size() {
    let ko = Obj::new("stack_vla")
        .code(CONSUME)
        .code("void vla(int n) { char b[n]; consume(b); }")
        .build();
    let err = assert_rules(&ko, &[], &["stack-frame"]);
    assert!(
        err.contains("function vla: variable-size stack allocation"),
        "{err}"
    );
}

#[test]
fn stack_probe_call() {
    let ko = Obj::new("stack_probe")
        .code(r#"__asm__(".text\n.globl probed\n.type probed,@function\nprobed:\n  mov $8192, %eax\n  call __rust_probestack\n  ret\n.size probed, .-probed\n");"#)
        .build();
    // The probe is not a kernel export either, so both rules fire.
    let err = assert_rules(&ko, &[], &["stack-probe", "undefined-symbol"]);
    assert!(
        err.contains("stack-probe helper __rust_probestack at .text+"),
        "{err}"
    );
    assert!(err.contains("(in probed+0x6)"), "{err}");
}

// ---------------------------------------------------------------------------
// Rule 8: constructors, unwind tables, GOT, COMMON
// ---------------------------------------------------------------------------

#[test]
fn ctors_section() {
    let ko = Obj::new("ctors")
        .code("static void early(void) { printf(\"early\\n\"); }\n__attribute__((section(\".ctors\"), used)) static void (*const early_ctor)(void) = early;")
        .build();
    let err = assert_rules(&ko, &[], &["ctors"]);
    assert!(err.contains("section .ctors present"), "{err}");
}

#[test]
fn init_array_constructor() {
    let ko = Obj::new("init_array")
        .code("__attribute__((constructor)) static void ctor(void) { printf(\"ctor\\n\"); }")
        .build();
    let err = assert_rules(&ko, &[], &["init-array"]);
    assert!(err.contains("section .init_array present"), "{err}");
}

#[test]
fn fini_array_destructor() {
    let ko = Obj::new("fini_array")
        .code("__attribute__((destructor)) static void dtor(void) { printf(\"dtor\\n\"); }")
        .build();
    let err = assert_rules(&ko, &[], &["fini-array"]);
    assert!(err.contains("section .fini_array present"), "{err}");
}

#[test]
fn eh_frame_unwind_tables() {
    let ko = Obj::new("eh_frame")
        .without("-fno-asynchronous-unwind-tables")
        .without("-fno-unwind-tables")
        .flag("-fasynchronous-unwind-tables")
        .build();
    let err = assert_rules(&ko, &[], &["eh-frame"]);
    assert!(err.contains("section .eh_frame present"), "{err}");
}

#[test]
fn got_relocation() {
    let ko = Obj::new("got")
        .code(r#"__asm__(".text\n.globl viagot\n.type viagot,@function\nviagot:\n  movq printf@GOTPCREL(%rip), %rax\n  ret\n.size viagot, .-viagot\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["got-reloc"]);
    assert!(
        err.contains("R_X86_64_REX_GOTPCRELX against printf"),
        "{err}"
    );
}

#[test]
fn got_relocation_from_pic_code() {
    let ko = Obj::new("got_pic")
        .without("-fno-pic")
        .without("-mcmodel=kernel")
        .flag("-fpic")
        .code("extern int tick_sbt;\nint read_tick(void) { return tick_sbt; }")
        .build();
    let err = assert_rules(&ko, &[], &["got-reloc"]);
    assert!(err.contains("GOTPCREL"), "{err}");
}

#[test]
fn common_symbol() {
    let ko = Obj::new("common")
        .flag("-fcommon")
        .code("int common_counter;\nint get_counter(void) { return common_counter; }")
        .build();
    let err = assert_rules(&ko, &[], &["common-symbol"]);
    assert!(
        err.contains("symbol common_counter is a COMMON symbol (size 4)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Rule 9: module metadata
// ---------------------------------------------------------------------------

#[test]
fn modmeta_missing_set() {
    let ko = Obj::new("md_missing").define("NO_MODMETA").build();
    // The prelude still declares the weak __start_/__stop_set_modmetadata_set
    // (as sys/linker_set.h would), now without the set: also a violation.
    let err = assert_rules(&ko, &[], &["modmetadata", "weak-undef"]);
    assert!(err.contains("no set_modmetadata_set section"), "{err}");
}

#[test]
fn modmeta_name_derived_from_file_name() {
    // ng_good metadata in a file called ng_other.ko.
    let ko = Obj::new("md_filename").name("ng_other").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("MDT_MODULE is named \"ng_good\", expected \"ng_other\""),
        "{err}"
    );
    assert!(
        err.contains("no MDT_VERSION for module \"ng_other\""),
        "{err}"
    );
    // ... and --expect-module fixes it.
    assert_passes(&ko, &["--expect-module", "ng_good"]);
}

#[test]
fn modmeta_wrong_expected_module() {
    let ko = good("md_expect");
    let err = assert_rules(&ko, &["--expect-module", "ng_ksocket"], &["modmetadata"]);
    assert!(err.contains("expected \"ng_ksocket\""), "{err}");
}

#[test]
fn modmeta_two_modules() {
    let ko = Obj::new("md_two").define("TWO_MODULES").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("2 MDT_MODULE entries (ng_good, ng_other)"),
        "{err}"
    );
}

#[test]
fn modmeta_no_module() {
    let ko = Obj::new("md_nomodule").define("NO_MODULE").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(err.contains("no MDT_MODULE entry"), "{err}");
}

#[test]
fn modmeta_bad_struct_version() {
    let ko = Obj::new("md_structver")
        .define("MD_STRUCT_VERSION=2")
        .build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("md_version is 2, must be MDT_STRUCT_VERSION (1)"),
        "{err}"
    );
}

#[test]
fn modmeta_version_mismatch() {
    let ko = Obj::new("md_version").define("MODVER=2").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("MDT_VERSION of \"ng_good\" is 2, expected 1"),
        "{err}"
    );
    assert_passes(&ko, &["--expect-version", "2"]);
}

#[test]
fn modmeta_missing_version() {
    let ko = Obj::new("md_noversion").define("NO_VERSION").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("no MDT_VERSION for module \"ng_good\""),
        "{err}"
    );
    // MODULE_VERSION is the project's policy for its own modules, not a
    // kernel rule: a foreign module (FreeBSD's own) passes without it...
    assert_passes(&ko, &["--foreign"]);
    // ...unless a version is asked for.
    assert_rules(
        &ko,
        &["--foreign", "--expect-version", "1"],
        &["modmetadata"],
    );
}

#[test]
fn foreign_modules_keep_the_kernel_rules() {
    // Any single version is accepted from a foreign module; the kernel's
    // own rules (here: the netgraph ABI dependency) still apply.
    let ko = Obj::new("md_foreign_version").define("MODVER=7").build();
    assert_passes(&ko, &["--foreign"]);
    let ko = Obj::new("md_foreign_ngdep")
        .define("NO_VERSION")
        .define("NGDEP=11")
        .build();
    assert_rules(&ko, &["--foreign"], &["modmetadata"]);
}

#[test]
fn modmeta_kernel_dep_out_of_range() {
    let ko = Obj::new("md_kdep")
        .define("KDEP_MIN=1400000")
        .define("KDEP_PREF=1400000")
        .define("KDEP_MAX=1499999")
        .build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("MDT_DEPEND on kernel is min=1400000 pref=1400000 max=1499999"),
        "{err}"
    );
}

#[test]
fn modmeta_kernel_dep_zig_version_inverted() {
    // pref below min (e.g. a hand-written record) is rejected too.
    let ko = Obj::new("md_kdep_order")
        .define("KDEP_PREF=1500000")
        .build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(err.contains("min <= pref <= max"), "{err}");
    // A different but valid 15.x range is accepted.
    let ok = Obj::new("md_kdep_ok")
        .define("KDEP_MIN=1500000")
        .define("KDEP_PREF=1500500")
        .build();
    assert_passes(&ok, &[]);
}

#[test]
fn modmeta_kernel_dep_missing() {
    let ko = Obj::new("md_nokdep").define("NO_KERNEL_DEP").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(err.contains("no MDT_DEPEND on \"kernel\""), "{err}");
}

#[test]
fn modmeta_netgraph_dep_wrong() {
    let ko = Obj::new("md_ngdep").define("NGDEP=131084").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(
        err.contains("MDT_DEPEND on netgraph is min=131084"),
        "{err}"
    );
}

#[test]
fn modmeta_netgraph_dep_missing() {
    let ko = Obj::new("md_nongdep").define("NO_NETGRAPH_DEP").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(err.contains("no MDT_DEPEND on \"netgraph\""), "{err}");
}

#[test]
fn modmeta_unrelocated_entry() {
    let ko = Obj::new("md_null").define("MD_NULL_ENTRY").build();
    let err = assert_rules(&ko, &[], &["modmetadata"]);
    assert!(err.contains("set_modmetadata_set[4] is NULL"), "{err}");
}

// ---------------------------------------------------------------------------
// Rule 9: sysinits
// ---------------------------------------------------------------------------

#[test]
fn sysinit_missing_set() {
    let ko = Obj::new("si_missing").define("NO_SYSINIT").build();
    // As above, the dangling weak __start_/__stop_set_sysinit_set fire too.
    let err = assert_rules(&ko, &[], &["sysinit", "weak-undef"]);
    assert!(err.contains("no set_sysinit_set section"), "{err}");
}

#[test]
fn sysinit_func_not_a_function() {
    let ko = Obj::new("si_data")
        .define("SYSINIT_FUNC=(void (*)(const void *))&dep_kernel")
        .build();
    let err = assert_rules(&ko, &[], &["sysinit"]);
    assert!(
        err.contains("func points at dep_kernel in non-executable section .data"),
        "{err}"
    );
}

#[test]
fn sysinit_func_null() {
    let ko = Obj::new("si_null").define("SYSINIT_FUNC=0").build();
    let err = assert_rules(&ko, &[], &["sysinit"]);
    assert!(err.contains("func is NULL"), "{err}");
}

#[test]
fn sysinit_read_only_struct() {
    let ko = Obj::new("si_ro").define("SYSINIT_RO").build();
    let err = assert_rules(&ko, &[], &["sysinit"]);
    assert!(
        err.contains("struct sysinit is in read-only section .rodata"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Structure: undecodable code, malformed tables, split linker sets
// ---------------------------------------------------------------------------

#[test]
fn disasm_undecodable_bytes() {
    // 0x06 (push es) does not exist in 64-bit mode.
    let ko = Obj::new("disasm_invalid")
        .code(r#"__asm__(".text\n.globl junk\n.type junk,@function\njunk:\n  .byte 0x06\n  ret\n.size junk, .-junk\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["disasm"]);
    assert!(err.contains("undecodable bytes at .text+"), "{err}");
    assert!(err.contains("(in junk+0x0)"), "{err}");
}

#[test]
fn malformed_relocation_section_link() {
    let ko = patched(&good("malformed_link"), "ng_good.ml.ko", |d| {
        let off = shdr_offset(d, ".rela.text") + 40;
        d[off..off + 4].copy_from_slice(&0u32.to_le_bytes());
    });
    let err = assert_rules(&ko, &[], &["malformed"]);
    assert!(
        err.contains(
            "relocation section .rela.text links to section 0 instead of the symbol table"
        ),
        "{err}"
    );
}

#[test]
fn malformed_section_alignment() {
    let ko = patched(&good("malformed_align"), "ng_good.ma.ko", |d| {
        let off = shdr_offset(d, ".text") + 48;
        d[off..off + 8].copy_from_slice(&0u64.to_le_bytes());
    });
    let err = assert_rules(&ko, &[], &["malformed"]);
    assert!(
        err.contains("loaded section .text has sh_addralign 0"),
        "{err}"
    );
}

#[test]
fn linker_set_split_in_two_sections() {
    let ko = Obj::new("split_set")
        .code(r#"__asm__(".section set_good_set,\"aw\",@progbits,unique,7\n.p2align 3\n.quad good_item\n.text\n");"#)
        .build();
    let err = assert_rules(&ko, &[], &["linker-set"]);
    assert!(
        err.contains("section set_good_set appears 2 times"),
        "{err}"
    );
}
