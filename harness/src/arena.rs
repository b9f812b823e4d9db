//! The low arena: one `MAP_32BIT` reservation below 2 GiB.
//!
//! FreeBSD amd64 modules are built with the kernel code model: absolute
//! addresses of their own code and data are 32-bit sign-extended (`R_X86_64_32S`)
//! and calls/data loads of kernel symbols are 32-bit PC-relative. In a Linux
//! process, the only place where both work is the bottom 2 GiB. Everything a
//! module image may address therefore lives here: the module images, the jump
//! stubs to host functions, and every kernel *data* object the harness exports.
//!
//! Memory handed out here is never returned: it lives as long as the process
//! (one harness process runs one scenario).

use std::sync::Mutex;

/// Size of the reservation.
pub const ARENA_SIZE: usize = 256 << 20;

struct Arena {
    base: usize,
    next: usize,
    end: usize,
}

static ARENA: Mutex<Option<Arena>> = Mutex::new(None);

fn with_arena<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    let mut g = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        // SAFETY: an anonymous private mapping with no fixed address has no
        // preconditions; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ARENA_SIZE,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(
            p != libc::MAP_FAILED,
            "harness: cannot map the low arena (MAP_32BIT)"
        );
        let base = p as usize;
        assert!(
            base + ARENA_SIZE <= 0x8000_0000,
            "harness: low arena above 2 GiB"
        );
        *g = Some(Arena {
            base,
            next: base,
            end: base + ARENA_SIZE,
        });
    }
    f(g.as_mut().expect("arena initialised above"))
}

/// Allocates `size` zeroed bytes aligned to `align` (a power of two) in the low arena.
/// The memory is readable, writable and executable and is never freed.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    assert!(align.is_power_of_two());
    with_arena(|a| {
        let start = (a.next + align - 1) & !(align - 1);
        let end = start.checked_add(size.max(1)).expect("arena overflow");
        assert!(
            end <= a.end,
            "harness: low arena exhausted ({size} bytes wanted)"
        );
        a.next = end;
        start as *mut u8
    })
}

/// Allocates a zero-initialised `T` in the low arena and returns a `'static` pointer to it.
pub fn alloc_obj<T>() -> *mut T {
    alloc(std::mem::size_of::<T>(), std::mem::align_of::<T>().max(16)).cast()
}

/// Copies `s` plus a terminating NUL into the arena; returns the C string pointer.
pub fn alloc_cstr(s: &str) -> *const core::ffi::c_char {
    let p = alloc(s.len() + 1, 1);
    // SAFETY: `p` points at `s.len() + 1` fresh writable bytes in the arena.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
    }
    p.cast()
}

/// True if `addr` lies inside the arena.
pub fn contains(addr: usize) -> bool {
    with_arena(|a| addr >= a.base && addr < a.end)
}

/// Base address of the arena (for diagnostics).
pub fn base() -> usize {
    with_arena(|a| a.base)
}
