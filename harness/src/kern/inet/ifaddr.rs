//! The modelled host's local addresses: `lo0` with 127.0.0.1/8 and ::1, as
//! a FreeBSD host has them, plus the IPv4 aliases a test or scenario adds
//! (`ifconfig lo0 alias 127.0.0.2/32`).
//!
//! Linux treats every address of 127/8 as local, FreeBSD only those
//! configured on an interface. The model keeps FreeBSD's view for 127/8
//! (binding to, or sending from, 127.0.0.2 fails with `EADDRNOTAVAIL`
//! until it is added), and asks Linux about every other address (whether
//! a socket can be bound to it). An alias is only ever an address of
//! 127/8, which Linux delivers locally on `lo`: an IPv6 address other than
//! ::1 cannot be modelled without changing the host's configuration.
//!
//! `lo0`'s interface index is Linux's `lo` index, so that the indexes in
//! `IPV6_PKTINFO` control data mean the same on both sides.
//!
//! State is per kernel instance, like the sockets' (`kern::klocal`).

use std::cell::RefCell;
use std::ffi::c_int;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::errno::fb;

crate::kern::klocal::kernel_local! {
    static ALIASES: RefCell<Vec<Ipv4Addr>> = RefCell::new(Vec::new());
}

/// Linux's `lo` interface index, which the model gives `lo0`.
pub fn lo_index() -> u32 {
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if i == 0 {
        1
    } else {
        i
    }
}

/// Why an alias cannot be added or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfError {
    /// The errno `ifconfig` would fail with.
    pub errno: c_int,
    /// What the model cannot do, or what is wrong.
    pub why: String,
}

fn refuse(errno: c_int, why: String) -> IfError {
    IfError { errno, why }
}

/// `ifconfig lo0 inet ADDR/32 alias`: makes an address of 127/8 local.
/// IPv6 addresses other than ::1 cannot be modelled (Linux would not
/// deliver them); 127.0.0.1 and ::1 are always there (`EEXIST`).
pub fn add_alias(a: IpAddr) -> Result<(), IfError> {
    let v4 = match a {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => {
            return Err(refuse(fb::EEXIST, format!("{a} is lo0's own address")))
        }
        IpAddr::V6(_) => {
            return Err(refuse(
                fb::EOPNOTSUPP,
                format!(
                    "the host kernel harness cannot add {a}: its loopback interface is Linux's, \
                     where only ::1 is local (FreeBSD's vm-tests can)"
                ),
            ))
        }
    };
    if v4.octets()[0] != 127 {
        return Err(refuse(
            fb::EOPNOTSUPP,
            format!("the host kernel harness adds only addresses of 127/8 (Linux delivers them on lo), not {a}"),
        ));
    }
    if v4 == Ipv4Addr::LOCALHOST || ALIASES.with(|x| x.borrow().contains(&v4)) {
        return Err(refuse(fb::EEXIST, format!("{a} is already on lo0")));
    }
    ALIASES.with(|x| x.borrow_mut().push(v4));
    Ok(())
}

/// `ifconfig lo0 inet ADDR -alias`.
pub fn remove_alias(a: IpAddr) -> Result<(), IfError> {
    let IpAddr::V4(v4) = a else {
        return Err(refuse(
            fb::EADDRNOTAVAIL,
            format!("{a} is not an alias of lo0"),
        ));
    };
    ALIASES.with(|x| {
        let mut x = x.borrow_mut();
        match x.iter().position(|&b| b == v4) {
            Some(i) => {
                x.remove(i);
                Ok(())
            }
            None => Err(refuse(
                fb::EADDRNOTAVAIL,
                format!("{a} is not an alias of lo0"),
            )),
        }
    })
}

/// The aliases added so far, in order.
pub fn aliases() -> Vec<IpAddr> {
    ALIASES.with(|x| x.borrow().iter().map(|&a| IpAddr::V4(a)).collect())
}

/// Removes every alias (end of a scenario or test).
pub fn reset_aliases() {
    ALIASES.with(|x| x.borrow_mut().clear());
}

/// Is `a` an address of 127/8 that FreeBSD would not have (neither
/// 127.0.0.1 nor an alias)? Linux would accept it.
pub fn unconfigured_loopback4(a: [u8; 4]) -> bool {
    let v4 = Ipv4Addr::from(a);
    a[0] == 127 && v4 != Ipv4Addr::LOCALHOST && !ALIASES.with(|x| x.borrow().contains(&v4))
}

/// Can a socket of the host be bound to `a` (Linux's view of "local")?
fn linux_local(a: IpAddr) -> bool {
    let r = match a {
        IpAddr::V4(v4) => std::net::UdpSocket::bind((v4, 0)),
        IpAddr::V6(v6) => std::net::UdpSocket::bind((v6, 0)),
    };
    r.is_ok()
}

/// Is `a` an address of this host (FreeBSD's `ifa_ifwithaddr`)? The
/// unspecified and multicast addresses are not.
pub fn is_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o[0] == 127 {
                !unconfigured_loopback4(o)
            } else {
                !v4.is_unspecified() && !v4.is_multicast() && linux_local(a)
            }
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // An IPv4-mapped source is the IPv4 address.
            Some(v4) => is_local(IpAddr::V4(v4)),
            None => v6 == Ipv6Addr::LOCALHOST || (!v6.is_unspecified() && linux_local(a)),
        },
    }
}

/// Does interface index `i` exist (`ifnet_byindex`)?
pub fn index_exists(i: u32) -> bool {
    if i == lo_index() {
        return true;
    }
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has IF_NAMESIZE bytes.
    !unsafe { libc::if_indextoname(i, name.as_mut_ptr()) }.is_null()
}

/// Is `a` an address of interface `i` (`in_ifhasaddr`)? The model knows
/// `lo0`'s addresses; for another interface it asks nothing and answers
/// by locality.
pub fn on_interface(i: u32, a: IpAddr) -> bool {
    if i != lo_index() {
        return is_local(a);
    }
    match a {
        IpAddr::V4(v4) => v4.octets()[0] == 127 && !unconfigured_loopback4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => on_interface(i, IpAddr::V4(v4)),
            None => v6 == Ipv6Addr::LOCALHOST,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_of_127_8_only() {
        reset_aliases();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(!is_local(two));
        assert!(unconfigured_loopback4([127, 0, 0, 2]));
        add_alias(two).unwrap();
        assert!(is_local(two));
        assert!(is_local("::ffff:127.0.0.2".parse().unwrap()));
        assert!(on_interface(lo_index(), two));
        assert_eq!(add_alias(two).unwrap_err().errno, fb::EEXIST);
        assert_eq!(
            add_alias("127.0.0.1".parse().unwrap()).unwrap_err().errno,
            fb::EEXIST
        );
        assert_eq!(
            add_alias("::2".parse().unwrap()).unwrap_err().errno,
            fb::EOPNOTSUPP
        );
        assert_eq!(
            add_alias("192.0.2.1".parse().unwrap()).unwrap_err().errno,
            fb::EOPNOTSUPP
        );
        assert_eq!(aliases(), vec![two]);
        remove_alias(two).unwrap();
        assert!(!is_local(two));
        assert_eq!(remove_alias(two).unwrap_err().errno, fb::EADDRNOTAVAIL);
        assert!(is_local("::1".parse().unwrap()));
        assert!(!is_local("0.0.0.0".parse().unwrap()));
        assert!(!is_local("192.0.2.1".parse().unwrap()));
        assert!(index_exists(lo_index()));
        assert!(!index_exists(0x7fff_fff0));
    }
}
