//! Traps: a fault in kernel code reported the way FreeBSD's `trap()` does.
//!
//! A NULL or wild pointer dereference, a jump into unloaded code, an
//! invalid instruction or a division by zero inside a module is a kernel
//! panic on FreeBSD. Here the fault arrives as a signal (`SIGSEGV`,
//! `SIGBUS`, `SIGILL`, `SIGFPE`) on the OS thread that ran the module code.
//! The handler installed by [`install`] decides whether kernel code faulted
//! (the faulting instruction, or a return address of the frame-pointer
//! chain, lies in a loaded or unloaded module image or a jump stub) and then
//! prints what amd64's `trap_fatal()` and `panic()` print — trap number and
//! name, fault address, fault code, instruction pointer as
//! `file.ko:function+offset`, the current thread — and a `KDB: stack
//! backtrace:` along the frame pointers (modules are built with
//! `-Cforce-frame-pointers=yes`), records it as a violation and ends the
//! process with [`super::PANIC_EXIT`], so the scenario or test fails with
//! the module function named instead of a bare `SIGSEGV`.
//!
//! A fault outside kernel code (a harness bug, or Rust's own stack-overflow
//! guard pages) goes to the handler that was installed before, unchanged.
//!
//! Threads: the handler is process-wide and runs on whichever OS thread
//! faulted; the first thread to trap prints the report and ends the
//! process, any other thread that traps meanwhile waits for that. Names are
//! looked up with the loader's lock taken by `try_lock` only (a thread that
//! faulted while holding it, or another thread holding it for longer than
//! the wait, gets raw addresses); memory along the frame chain is read with
//! `process_vm_readv`, which fails instead of faulting again.

use std::ffi::c_int;
use std::mem::zeroed;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// The signals handled as traps.
const SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
/// Frames printed at most in the backtrace.
const MAX_FRAMES: usize = 32;
/// `si_code` of a fault the kernel raised itself (general protection).
const SI_KERNEL: c_int = 0x80;

static INSTALL: Once = Once::new();
/// The handlers found at installation (`struct sigaction` each, boxed and
/// leaked), in the order of [`SIGNALS`].
static OLD: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
/// Set by the first thread that reports a trap.
static TRAPPED: AtomicBool = AtomicBool::new(false);

/// Installs the trap handler for the whole process (first call only).
pub fn install() {
    INSTALL.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: plain sigaction(2) calls with zeroed, then filled,
            // structures; the handler is an `extern "C"` function of the
            // right signature; the previous action is kept for chaining.
            unsafe {
                let mut sa: libc::sigaction = zeroed();
                sa.sa_sigaction = on_trap as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut sa.sa_mask);
                let old: &'static mut libc::sigaction = Box::leak(Box::new(zeroed()));
                if libc::sigaction(sig, &sa, old) == 0 {
                    OLD[i].store(old as *mut libc::sigaction as usize, Ordering::Release);
                }
            }
        }
    });
}

/// What amd64's `trap()` calls trap `T_*`, with `trap_msg[]`'s text.
fn trap_kind(sig: c_int, code: c_int) -> (u32, &'static str, &'static str) {
    match sig {
        libc::SIGILL => (
            1,
            "privileged instruction fault",
            "privileged instruction fault",
        ),
        libc::SIGFPE => (18, "integer divide fault", "integer divide fault"),
        libc::SIGSEGV if code == SI_KERNEL => {
            (9, "general protection fault", "general protection fault")
        }
        _ => (12, "page fault", "page fault"),
    }
}

/// Reads one word of this process's memory without faulting.
fn peek(addr: usize) -> Option<usize> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    let mut v: usize = 0;
    let local = libc::iovec {
        iov_base: (&mut v as *mut usize).cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: process_vm_readv on our own pid reads `remote` into `v` and
    // fails with EFAULT (instead of faulting) when `remote` is not mapped.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == 8).then_some(v)
}

/// The loader's name for `addr` (`ng_ksocket.ko:fn+0x1c`), if it can be had
/// without waiting long for the loader's lock.
fn name_of(addr: usize) -> Option<String> {
    super::loader::try_symbolize(addr).or_else(|| host_name(addr))
}

/// The dynamic linker's name for a host address (`libc.so.6:memcpy+0x10`).
fn host_name(addr: usize) -> Option<String> {
    // SAFETY: dladdr only reads the dynamic linker's tables; `info` is a
    // zeroed out-structure it fills.
    let info = unsafe {
        let mut info: libc::Dl_info = zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0 {
            return None;
        }
        info
    };
    let cstr = |p: *const std::ffi::c_char| {
        // SAFETY: dladdr's strings are NUL-terminated and live as long as
        // the object is loaded.
        (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy())
    };
    let file = cstr(info.dli_fname)?;
    let file = file.rsplit('/').next().unwrap_or(&file).to_string();
    match cstr(info.dli_sname) {
        Some(sym) => Some(format!(
            "{file}:{sym}+{:#x}",
            addr.wrapping_sub(info.dli_saddr as usize)
        )),
        None => Some(format!(
            "{file}+{:#x}",
            addr.wrapping_sub(info.dli_fbase as usize)
        )),
    }
}

/// True if `addr` is kernel code: in a module image or a jump stub.
fn is_kernel_text(addr: usize) -> bool {
    super::loader::try_is_module_text(addr).unwrap_or(false)
}

fn fmt_addr(addr: usize) -> String {
    match name_of(addr) {
        Some(n) => format!("{addr:#x} <{n}>"),
        None => format!("{addr:#x}"),
    }
}

/// The return addresses along the frame-pointer chain from `rbp`.
fn frames(rbp: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut fp = rbp;
    while out.len() < MAX_FRAMES {
        let (Some(next), Some(ret)) = (peek(fp), fp.checked_add(8).and_then(peek)) else {
            break;
        };
        if ret == 0 {
            break;
        }
        out.push(ret);
        if next <= fp {
            break;
        }
        fp = next;
    }
    out
}

/// Bytes above the stack pointer searched by [`scan_return`].
const SCAN_BYTES: usize = 8192;

/// The first word above `rsp` that is a return address into module code:
/// it points just after a `call` (`e8 rel32`, or `ff /2` through a
/// register or memory operand).
fn scan_return(rsp: usize) -> Option<usize> {
    let start = rsp & !7;
    (0..SCAN_BYTES / 8)
        .filter_map(|i| peek(start + i * 8))
        .find(|&a| is_kernel_text(a) && after_call(a))
}

/// True if the instruction before `ret` is a call.
fn after_call(ret: usize) -> bool {
    let byte = |back: usize| peek((ret - back) & !7).map(|w| (w >> (((ret - back) & 7) * 8)) as u8);
    if byte(5) == Some(0xe8) {
        return true;
    }
    // ff /2: modrm reg field 2, 2 to 7 bytes long.
    (2..=7).any(|n| byte(n) == Some(0xff) && byte(n - 1).is_some_and(|m| (m >> 3) & 7 == 2))
}

/// `trap_fatal()`'s "fault code" line from the page-fault error code.
fn fault_code(err: usize) -> String {
    let mode = "supervisor";
    let what = if err & 0x10 != 0 {
        "instruction fetch"
    } else if err & 0x2 != 0 {
        "write data"
    } else {
        "read data"
    };
    let why = if err & 0x1 != 0 {
        "protection violation"
    } else {
        "page not present"
    };
    format!("{mode} {what}, {why}")
}

/// Bytes of the stack the report is made on.
const TRAP_STACK: usize = 1 << 20;

/// What the signal handler hands to [`trap_main`] on the trap stack.
struct TrapArgs {
    sig: c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
}

/// The signal handler. It runs on the thread's alternate signal stack
/// (Rust's, a few KiB), too small for the report: it maps a stack of its
/// own (mmap is async-signal-safe) and runs [`trap_main`] there.
extern "C" fn on_trap(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let mut args = TrapArgs { sig, info, ctx };
    let argp: *mut TrapArgs = &mut args;
    // SAFETY: an anonymous private mapping; checked against MAP_FAILED.
    let stack = unsafe {
        libc::mmap(
            null_mut(),
            TRAP_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        trap_main(argp.cast());
        return;
    }
    let top = (stack as usize + TRAP_STACK) & !15;
    // SAFETY: switches %rsp to the top of the fresh, 16-byte aligned
    // mapping, calls `trap_main(argp)` (a C-ABI function that keeps %r12,
    // callee-saved, intact), and switches back.
    unsafe {
        std::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {f}",
            "mov rsp, r12",
            top = in(reg) top,
            f = in(reg) trap_main as extern "C" fn(*mut libc::c_void),
            in("rdi") argp,
            out("r12") _,
            clobber_abi("C"),
        );
        libc::munmap(stack, TRAP_STACK);
    }
}

extern "C" fn trap_main(args: *mut libc::c_void) {
    // SAFETY: `args` is the live TrapArgs of `on_trap`.
    let TrapArgs { sig, info, ctx } = unsafe { &*(args as *const TrapArgs) };
    let (sig, info, ctx) = (*sig, *info, *ctx);
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    let (code, fault_addr, rip, rsp, rbp, err) = unsafe {
        let uc = &*(ctx as *const libc::ucontext_t);
        let g = &uc.uc_mcontext.gregs;
        (
            (*info).si_code,
            (*info).si_addr() as usize,
            g[libc::REG_RIP as usize] as usize,
            g[libc::REG_RSP as usize] as usize,
            g[libc::REG_RBP as usize] as usize,
            g[libc::REG_ERR as usize] as usize,
        )
    };
    let mut chain = frames(rbp);
    // A fault outside module code (a NULL function pointer called, a wild
    // pointer handed to a kernel function): the module's return address
    // is on the stack above the faulting frame.
    if !is_kernel_text(rip) {
        if let Some(ret) = scan_return(rsp) {
            chain.insert(0, ret);
        }
    }
    let kernel = is_kernel_text(rip) || chain.iter().any(|&a| is_kernel_text(a));
    if !kernel {
        chain_to_old(sig, info, ctx);
        return;
    }
    if TRAPPED.swap(true, Ordering::AcqRel) {
        // Another thread is reporting; the process ends with its report.
        loop {
            // SAFETY: pause(2) has no preconditions.
            unsafe { libc::pause() };
        }
    }
    let (num, name, panic_msg) = trap_kind(sig, code);
    let td = super::thread::try_curthread_summary().unwrap_or_else(|| "?".into());
    let mut lines = vec![
        String::new(),
        format!("Fatal trap {num}: {name} while in kernel mode"),
        "cpuid = 0; apic id = 00".to_string(),
    ];
    if num == 12 || num == 9 {
        lines.push(format!("fault virtual address\t= {fault_addr:#x}"));
        if num == 12 {
            lines.push(format!("fault code\t\t= {}", fault_code(err)));
        }
    }
    lines.push(format!("instruction pointer\t= 0x20:{}", fmt_addr(rip)));
    lines.push(format!("stack pointer\t        = 0x28:{rsp:#x}"));
    lines.push(format!("frame pointer\t        = 0x28:{rbp:#x}"));
    lines.push(format!("current thread\t\t= {td}"));
    lines.push(format!("trap number\t\t= {num}"));
    lines.push(format!("panic: {panic_msg}"));
    lines.push("KDB: stack backtrace:".to_string());
    lines.push(format!("#0 {}", fmt_addr(rip)));
    for (i, a) in chain.iter().enumerate() {
        lines.push(format!("#{} {}", i + 1, fmt_addr(*a)));
    }
    let report = lines.join("\n");
    eprintln!("{report}");
    let at = name_of(rip).unwrap_or_else(|| format!("{rip:#x}"));
    let first_module = std::iter::once(rip)
        .chain(chain.iter().copied())
        .find(|&a| is_kernel_text(a))
        .and_then(name_of);
    let summary = match first_module {
        Some(m) if m != at => format!("fatal trap {num} ({name}) at {at}, in {m}"),
        _ => format!("fatal trap {num} ({name}) at {at}"),
    };
    super::violation(format!("{summary}: fault virtual address {fault_addr:#x}"));
    super::panic_hooks();
    eprintln!("harness: kernel panic; the scenario fails");
    // SAFETY: _exit(2) ends the process at once (no atexit handlers, no
    // unwinding through the faulting frame).
    unsafe { libc::_exit(super::PANIC_EXIT) };
}

/// Passes a fault that is not the kernel's to the previous handler.
fn chain_to_old(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    let old = OLD[i].load(Ordering::Acquire) as *const libc::sigaction;
    // SAFETY: `old` is null or the leaked copy of the previous action.
    let old = unsafe { old.as_ref() };
    match old {
        Some(o) if o.sa_sigaction != libc::SIG_DFL && o.sa_sigaction != libc::SIG_IGN => {
            if o.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous SA_SIGINFO handler, called as the
                // kernel would have called it.
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(o.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous plain handler.
                let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(o.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Default action: reset it; returning re-runs the faulting
            // instruction, which then ends the process as it would have.
            // SAFETY: restores SIG_DFL for this signal.
            unsafe {
                let mut sa: libc::sigaction = zeroed();
                sa.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, null_mut());
            }
        }
    }
}
