//! The harness's kernel symbol table: every function and data object a
//! loaded module may import, by name.
//!
//! Functions are host functions (`extern "C"`), reachable from module code
//! through a jump stub the loader places in the low arena. Data objects must
//! themselves live in the low arena (see `arena`), because module code loads
//! them with 32-bit PC-relative or absolute addressing and no stub can help a
//! data access.

use std::collections::HashMap;

/// Kind of an exported symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Host function; the loader binds module references to a jump stub.
    Func,
    /// Data object in the low arena; bound directly.
    Data,
}

/// One exported kernel symbol.
#[derive(Clone, Copy, Debug)]
pub struct Sym {
    pub addr: usize,
    pub kind: Kind,
}

/// The table of exported kernel symbols.
#[derive(Default)]
pub struct Exports {
    map: HashMap<String, Sym>,
}

impl Exports {
    pub fn new() -> Self {
        Self::default()
    }

    /// Exports a host function under `name`.
    pub fn func(&mut self, name: &str, addr: usize) {
        self.map.insert(
            name.to_string(),
            Sym {
                addr,
                kind: Kind::Func,
            },
        );
    }

    /// Exports a data object under `name`; `addr` must be inside the low arena.
    pub fn data(&mut self, name: &str, addr: usize) {
        assert!(
            crate::arena::contains(addr),
            "data symbol {name} outside the low arena"
        );
        self.map.insert(
            name.to_string(),
            Sym {
                addr,
                kind: Kind::Data,
            },
        );
    }

    /// Adds every symbol of `other` (replacing symbols of the same name).
    pub fn merge(&mut self, other: Exports) {
        self.map.extend(other.map);
    }

    pub fn get(&self, name: &str) -> Option<Sym> {
        self.map.get(name).copied()
    }

    /// Reverse lookup (address → name), for diagnostics.
    pub fn name_of(&self, addr: usize) -> Option<&str> {
        self.map
            .iter()
            .find(|(_, s)| s.addr == addr)
            .map(|(n, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Exports a list of `extern "C"` functions under their own names.
#[macro_export]
macro_rules! export_funcs {
    ($ex:expr, $($f:ident),* $(,)?) => {
        $( $ex.func(stringify!($f), $f as usize); )*
    };
}
