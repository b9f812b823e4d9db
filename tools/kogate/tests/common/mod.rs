//! Test helpers: build tiny FreeBSD kernel objects with clang-19 at test time
//! and run the kogate binary on them.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiler used for every test object.
pub fn clang() -> String {
    let cc = std::env::var("KOGATE_TEST_CLANG").unwrap_or_else(|_| "clang-19".to_string());
    match Command::new(&cc).arg("--version").output() {
        Ok(o) if o.status.success() => cc,
        _ => panic!(
            "kogate tests need `{cc}` to build their test objects, and it was not found or does not run. \
             Install it (apt-get install clang-19) or point KOGATE_TEST_CLANG at a clang that targets x86_64-unknown-freebsd15.0."
        ),
    }
}

/// The kernel C flags the project's C glue uses (`kmod/kernel-cflags`), minus
/// the kernel headers and options (test objects declare what they use), to
/// compile one object (`-c`).
pub fn kernel_flags() -> Vec<&'static str> {
    let mut f = kelf::kernel_cflags(&["target", "codegen"]);
    f.extend(["-nostdinc", "-c", "-Wno-unused-function"]);
    f
}

/// Module metadata, sysinits and a few innocent functions, written by hand
/// with the FreeBSD 15 amd64 struct layouts (sys/module.h, sys/kernel.h) so
/// the tests do not depend on the project build. Every piece can be switched
/// off or altered with -D macros.
pub const PRELUDE: &str = r#"
struct mod_metadata { int md_version; int md_type; const void *md_data; const char *md_cval; };
struct mod_depend { int md_ver_minimum, md_ver_preferred, md_ver_maximum; };
struct mod_version { int mv_version; };
typedef struct moduledata { const char *name; int (*evhand)(void *, int, void *); void *priv; } moduledata_t;
struct sysinit { unsigned subsystem; unsigned order; void *next; void (*func)(const void *); const void *udata; };

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
/* DATA_SET: const pointer; DATA_WSET: writable pointer (FreeBSD 15 sysinits). */
#define DATA_SET(set, sym) static const void *const XCAT(__set_##set##_, __LINE__) \
    __attribute__((section("set_" #set), used, aligned(8))) = &(sym)
#define DATA_WSET(set, sym) static const void *XCAT(__set_##set##_, __LINE__) \
    __attribute__((section("set_" #set), used, aligned(8))) = &(sym)

/* What sys/linker_set.h and sys/pcpu.h put in every C file. */
__asm__(".weak __start_set_modmetadata_set\n.weak __stop_set_modmetadata_set\n"
        ".weak __start_set_sysinit_set\n.weak __stop_set_sysinit_set\n"
        ".globl __start_set_pcpu\n.globl __stop_set_pcpu\n");

#ifndef MODNAME
#define MODNAME "ng_good"
#endif
#ifndef MD_STRUCT_VERSION
#define MD_STRUCT_VERSION 1
#endif
#ifndef KDEP_MIN
#define KDEP_MIN 1500068
#endif
#ifndef KDEP_PREF
#define KDEP_PREF 1500068
#endif
#ifndef KDEP_MAX
#define KDEP_MAX 1599999
#endif
#ifndef NGDEP
#define NGDEP 12
#endif
#ifndef MODVER
#define MODVER 1
#endif
#ifndef SYSINIT_FUNC
#define SYSINIT_FUNC module_register_init
#endif
#ifdef SYSINIT_RO
#define SYSINIT_CONST const
#else
#define SYSINIT_CONST
#endif

extern int printf(const char *, ...);
extern void module_register_init(const void *);
extern void ng_send_fn(void);
extern const char ng_parse_struct_type[];
extern const char ng_parse_uint32_type[];

static int good_modevent(void *mod, int what, void *arg)
{
    printf("ng_good: event %d\n", what);
    return 0;
}
static void good_late_init(const void *arg) { printf("ng_good: late init %p\n", arg); }
static void good_uninit(const void *arg) { printf("ng_good: uninit %p\n", arg); }

static moduledata_t good_mod = { MODNAME, good_modevent, 0 };

#ifndef NO_MODMETA
static struct mod_depend dep_kernel = { KDEP_MIN, KDEP_PREF, KDEP_MAX };
static struct mod_depend dep_netgraph = { NGDEP, NGDEP, NGDEP };
static struct mod_version mod_ver = { MODVER };
static struct mod_metadata md_kernel = { MD_STRUCT_VERSION, 1, &dep_kernel, "kernel" };
static struct mod_metadata md_netgraph = { MD_STRUCT_VERSION, 1, &dep_netgraph, "netgraph" };
static struct mod_metadata md_module = { MD_STRUCT_VERSION, 2, &good_mod, MODNAME };
static struct mod_metadata md_version = { MD_STRUCT_VERSION, 3, &mod_ver, MODNAME };
#ifndef NO_KERNEL_DEP
DATA_SET(modmetadata_set, md_kernel);
#endif
#ifndef NO_MODULE
DATA_SET(modmetadata_set, md_module);
#endif
#ifdef TWO_MODULES
static moduledata_t other_mod = { "ng_other", good_modevent, 0 };
static struct mod_metadata md_module2 = { 1, 2, &other_mod, "ng_other" };
DATA_SET(modmetadata_set, md_module2);
#endif
#ifndef NO_NETGRAPH_DEP
DATA_SET(modmetadata_set, md_netgraph);
#endif
#ifndef NO_VERSION
DATA_SET(modmetadata_set, md_version);
#endif
#ifdef MD_NULL_ENTRY
static const void *const md_null_entry __attribute__((section("set_modmetadata_set"), used, aligned(8))) = 0;
#endif
#endif /* NO_MODMETA */

#ifndef NO_SYSINIT
static SYSINIT_CONST struct sysinit si_register = { 0x7000000, 0x1000000, 0, SYSINIT_FUNC, &good_mod };
DATA_WSET(sysinit_set, si_register);
static struct sysinit si_late = { 0x7000000, 0x2000000, 0, good_late_init, 0 };
DATA_WSET(sysinit_set, si_late);
#endif
static struct sysinit si_uninit = { 0x7000000, 0x1000000, 0, good_uninit, &good_mod };
DATA_WSET(sysuninit_set, si_uninit);

/* A pointer to a netgraph.ko data object (R_X86_64_64 to an import). */
struct fake_parse_field { const char *name; const void *type; };
const struct fake_parse_field good_fields[] = {
    { "value", ng_parse_uint32_type },
    { 0, ng_parse_struct_type },
};

/* The module's own linker set: weak __start_/__stop_ references to it are
   bound to the section by the kernel linker, so they are allowed. */
static const int good_item = 7;
DATA_SET(good_set, good_item);
extern const void *__start_set_good_set[] __attribute__((weak));
extern const void *__stop_set_good_set[] __attribute__((weak));
long good_count(void) { return __stop_set_good_set - __start_set_good_set; }

void good_send(void) { ng_send_fn(); }

/* Instructions that share CPUID features with SSE/SSE4.2 but touch no FPU
   state, and stack adjustments of exactly the 2 KiB limit. */
__asm__(".text\n.globl good_asm\n.type good_asm,@function\ngood_asm:\n"
        "  lfence\n  mfence\n  sfence\n  pause\n  prefetchnta (%rdi)\n"
        "  movnti %rax, (%rdi)\n  clflush (%rdi)\n  crc32q %rsi, %rax\n  popcnt %rax, %rax\n"
        "  sub $2032, %rsp\n  lea -16(%rsp), %rsp\n  add $2048, %rsp\n  and $-16, %rsp\n  ret\n"
        ".size good_asm, .-good_asm\n");
"#;

pub struct Obj {
    test: String,
    name: String,
    defines: Vec<String>,
    flags: Vec<String>,
    drop_flags: Vec<&'static str>,
    snippet: String,
    prelude: bool,
}

impl Obj {
    /// A new object for `test` (used as the directory name); file ng_good.ko.
    pub fn new(test: &str) -> Obj {
        Obj {
            test: test.to_string(),
            name: "ng_good".into(),
            defines: Vec::new(),
            flags: Vec::new(),
            drop_flags: Vec::new(),
            snippet: String::new(),
            prelude: true,
        }
    }
    /// File name (without .ko); the gate derives the module name from it.
    pub fn name(mut self, n: &str) -> Obj {
        self.name = n.to_string();
        self
    }
    pub fn define(mut self, d: &str) -> Obj {
        self.defines.push(format!("-D{d}"));
        self
    }
    pub fn flag(mut self, f: &str) -> Obj {
        self.flags.push(f.to_string());
        self
    }
    /// Remove a default kernel flag.
    pub fn without(mut self, f: &'static str) -> Obj {
        self.drop_flags.push(f);
        self
    }
    /// Allow SSE/x87 code generation (remove the -mno-* / soft-float flags).
    pub fn with_sse(self) -> Obj {
        self.without("-mno-mmx")
            .without("-mno-sse")
            .without("-mno-sse2")
            .without("-mno-avx")
            .without("-msoft-float")
    }
    pub fn code(mut self, c: &str) -> Obj {
        self.snippet.push_str(c);
        self.snippet.push('\n');
        self
    }
    pub fn no_prelude(mut self) -> Obj {
        self.prelude = false;
        self
    }

    pub fn dir(&self) -> PathBuf {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("kogate-tests")
            .join(&self.test);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Compiles and returns the path of `<dir>/<name>.ko`.
    pub fn build(&self) -> PathBuf {
        let cc = clang();
        let dir = self.dir();
        let src = dir.join(format!("{}.c", self.name));
        let out = dir.join(format!("{}.ko", self.name));
        let mut text = String::new();
        if self.prelude {
            text.push_str(PRELUDE);
        }
        text.push_str(&self.snippet);
        std::fs::write(&src, text).unwrap();
        let mut cmd = Command::new(cc);
        for f in kernel_flags() {
            if !self.drop_flags.contains(&f) {
                cmd.arg(f);
            }
        }
        cmd.args(&self.defines)
            .args(&self.flags)
            .arg(&src)
            .arg("-o")
            .arg(&out);
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "building {} failed:\n{:?}\n{}",
            out.display(),
            cmd,
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn kogate<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let o = Command::new(env!("CARGO_BIN_EXE_kogate"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Rules named in `kogate: <file>: <rule>: ...` lines for `file`.
pub fn rules_for(stderr: &str, file: &Path) -> BTreeSet<String> {
    let prefix = format!("kogate: {}: ", file.display());
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once(": ").map(|(r, _)| r.to_string()))
        .filter(|r| r != "FAILED")
        .collect()
}

/// Runs the gate on `file` and asserts it fails with exactly `expected` rules.
/// Returns stderr for further checks.
pub fn assert_rules(file: &Path, extra_args: &[&str], expected: &[&str]) -> String {
    let mut args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    args.push(file.display().to_string());
    let r = kogate(&args);
    let got = rules_for(&r.stderr, file);
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        (r.code, &got),
        (1, &want),
        "kogate {args:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("kogate: {}: FAILED:", file.display())),
        "no FAILED summary line:\n{}",
        r.stderr
    );
    r.stderr
}

/// Asserts the gate accepts `file`; returns stdout (the summary).
pub fn assert_passes(file: &Path, extra_args: &[&str]) -> String {
    let mut args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    args.push(file.display().to_string());
    let r = kogate(&args);
    assert_eq!(
        r.code, 0,
        "kogate {args:?} should pass\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout, r.stderr
    );
    r.stdout
}

/// Lines of stderr for one rule.
pub fn lines_of<'a>(stderr: &'a str, rule: &str) -> Vec<&'a str> {
    let needle = format!(": {rule}: ");
    stderr.lines().filter(|l| l.contains(&needle)).collect()
}

/// Copies `src` to `<dir>/<name>` and applies `patch` to the bytes.
pub fn patched(src: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut data = std::fs::read(src).unwrap();
    patch(&mut data);
    let out = src.parent().unwrap().join(name);
    std::fs::write(&out, data).unwrap();
    out
}

/// File offset of the section header of the section called `name`.
pub fn shdr_offset(data: &[u8], name: &str) -> usize {
    let elf = kogate::elf::Elf::parse(data).expect("parse");
    let s = elf
        .section_by_name(name)
        .unwrap_or_else(|| panic!("no section {name}"));
    elf.hdr.e_shoff as usize + s.index * kogate::elf::SHDR_SIZE
}

pub fn set_section_type(data: &mut [u8], name: &str, t: u32) {
    let off = shdr_offset(data, name) + 4;
    data[off..off + 4].copy_from_slice(&t.to_le_bytes());
}
