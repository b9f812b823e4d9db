//! The scenario runner (docs/scenarios.md): parses `scenarios/*.ngs` files
//! and runs them against the harness kernel with an emulation of ngctl(8)
//! and libnetgraph, real Linux UDP/TCP peers, module loading and
//! credentials, then checks that the kernel is left clean.
//!
//! ```text
//! ngharness run [--ko FILE]... [--verbose] [--backend auto|socket|builtin|fake|bridge]
//!               [--bridge-lib FILE] [--ngctl FILE] [--timeout SECS] SCENARIO...
//! ```
//!
//! * [`parse`] — the scenario format (`FILE:LINE:` errors; the same rules as
//!   `vm-tests/translate.py`);
//! * [`pattern`] — output-line patterns (`*`, `{id}`, tabs);
//! * [`port`] — [`port::NgPort`], the libnetgraph-level client interface,
//!   and libnetgraph over `PF_NETGRAPH` system calls ([`port::SocketPort`]);
//! * [`ngctl`] — ngctl's commands, output and exit statuses over an NgPort;
//! * [`backend`] — the `PF_NETGRAPH` socket layer as a [`port::SockApi`]
//!   (through `ng_socket.ko`), the built-in netgraph client backend, and the
//!   choice between them; [`fake`] — a pure-Rust model for self-tests;
//! * [`bridge`] — the same ngctl emulation as a Linux process through
//!   `libngbridge.so` against an `ngharness serve` (`--backend bridge`);
//! * [`extctl`] — an external ngctl binary (FreeBSD's, built for Linux) in
//!   place of the emulation, through the bridge (`--ngctl FILE`);
//! * [`outside`] — UDP/TCP sockets outside netgraph;
//! * [`kernel`] — module loading, credentials, event loop, end checks;
//! * [`runner`] — one scenario in this process; [`cli`] — `ngharness run`,
//!   one child process per scenario.
//!
//! Words: `ngctl WORDS` passes each word (quotes removed, escapes decoded)
//! as one argument, like a shell command line; `S: WORDS` types the words,
//! joined by blanks, into the interactive ngctl, which splits them at blanks
//! again (so a session word cannot contain a blank). Quotes inside a word are
//! literal: `msg ec: name { name="x" }` works as written, while an ASCII
//! string argument that must start with a quote is written `"\"y\""`.

pub mod backend;
pub mod bridge;
pub mod cli;
pub mod errno;
pub mod extctl;
pub mod fake;
pub mod kernel;
pub mod msg;
pub mod ngctl;
pub mod outside;
pub mod parse;
pub mod pattern;
pub mod port;
pub mod runner;

pub use cli::cli;
