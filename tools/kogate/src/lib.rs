//! kogate: the kernel-linker gate for ngsock's FreeBSD 15 amd64 `.ko` files.
//!
//! No FreeBSD kernel runs on the build machines, so every check the FreeBSD
//! kernel linker (link_elf_obj + amd64 elf_machdep) would make at `kldload`
//! time, plus the project's own kernel-code rules, is made here statically on
//! the ELF relocatable object. See README.md for the rule list.

pub mod check;
pub mod disasm;
pub mod elf;
pub mod exports;
pub mod meta;

pub use check::{check, module_name_from_path, Options, Outcome, Violation};
