//! Host kernel harness: loads FreeBSD 15 amd64 `.ko` files into a Linux
//! process the way FreeBSD's kernel linker does, resolves their kernel imports
//! against a strict userspace model of the kernel services they use, and
//! drives them with scenario files written in ngctl's command language.

pub mod arena;
pub mod bench;
pub mod demo;
pub mod exports;
pub mod fuzz;
pub mod kern;
pub mod netgraph;
pub mod race;
pub mod scenario;
pub mod serve;
pub mod wire;
