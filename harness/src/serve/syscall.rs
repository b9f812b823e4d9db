//! The one place where the bridge enters the kernel model: [`enter`] runs a
//! client's request as a system call of that client's "process" (its own
//! `struct thread`, with the caller's credential) and returns the reply.
//!
//! Nothing here ever sleeps in the kernel: socket calls are made with
//! `MSG_DONTWAIT`, and a call that would block returns EWOULDBLOCK to the
//! client, which waits for the readiness token (receives) or retries
//! (sends) itself. So a blocked client never holds up another one, and a
//! future SMP harness can give each client's [`Proc`] its own CPU thread.

use fbsd_sys::thread;

use crate::kern::{domain, loader, sysctl, thread as kthread};
use crate::wire::{op, Reply, Request, MAX_BUFFER};

const EPERM: i32 = fbsd_sys::EPERM as i32;
const ENOENT: i32 = fbsd_sys::ENOENT as i32;
const EBADF: i32 = fbsd_sys::EBADF as i32;
const EBUSY: i32 = fbsd_sys::EBUSY as i32;
const EEXIST: i32 = fbsd_sys::EEXIST as i32;
const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const EPIPE: i32 = fbsd_sys::EPIPE as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;
const EWOULDBLOCK: i32 = fbsd_sys::EWOULDBLOCK as i32;
const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
const SOL_SOCKET: i32 = fbsd_sys::SOL_SOCKET as i32;

/// Request flag (`c` of [`op::SEND`]): a control buffer was given.
pub const SEND_CONTROL: i32 = 1;
/// Request flag (`c` of [`op::SEND`]): a destination address was given.
pub const SEND_ADDR: i32 = 2;

/// Modules the harness kernel has built in (`netgraph`, `ng_echo`,
/// `ng_hole`): "compiled into the kernel", file 1.
pub use crate::scenario::kernel::BUILTIN_MODULES;

/// Module ids reported for the built-in modules.
const BUILTIN_MODID_BASE: i32 = 10_000;
/// File id of the kernel itself.
const KERNEL_FILEID: i32 = 1;

/// One client connection's process in the kernel.
pub struct Proc {
    td: *mut thread,
    uid: u32,
    /// The harness descriptor of the connection's socket, once created.
    pub sock: Option<domain::Fd>,
}

impl Proc {
    /// A process with `uid`'s credential.
    pub fn new(uid: u32) -> Proc {
        Proc {
            td: new_td(uid),
            uid,
            sock: None,
        }
    }

    /// The process's thread, with `uid`'s credential (a new one if the
    /// caller's effective uid changed since the last call).
    fn thread(&mut self, uid: u32) -> *mut thread {
        if uid != self.uid {
            self.td = new_td(uid);
            self.uid = uid;
        }
        self.td
    }

    /// Closes the socket (the descriptor's last reference went away: the
    /// client closed it or its process exited).
    pub fn close(&mut self) {
        if let Some(fd) = self.sock.take() {
            let td = self.td;
            kthread::with_curthread(td, || {
                let _ = domain::close(fd);
            });
        }
    }
}

fn new_td(uid: u32) -> *mut thread {
    let td = kthread::new_thread(if uid == 0 {
        kthread::Cred::Root
    } else {
        kthread::Cred::User(uid)
    });
    kthread::set_thread_name(td, "ngbridge client");
    td
}

/// Runs `req` as a system call of `p` with effective uid `uid`.
/// On an SMP machine the call runs on a kernel thread of its own (the
/// client's process), the server waiting for it.
pub fn enter(p: &mut Proc, uid: u32, req: &Request) -> Reply {
    let td = p.thread(uid);
    if crate::kern::smp::active() {
        return crate::kern::smp::scoped("syscall", td, || dispatch(p, uid, req));
    }
    kthread::with_curthread(td, || dispatch(p, uid, req))
}

fn result(r: Result<(), i32>) -> Reply {
    match r {
        Ok(()) => Reply::ok(0),
        Err(e) => Reply::err(e),
    }
}

/// A NUL-terminated (or whole) blob as a string.
fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn buffer_len(n: i32) -> Result<usize, i32> {
    if n < 0 {
        Err(EINVAL)
    } else {
        Ok((n as usize).min(MAX_BUFFER))
    }
}

fn dispatch(p: &mut Proc, uid: u32, req: &Request) -> Reply {
    match req.op {
        op::SOCKET => {
            if p.sock.is_some() {
                return Reply::err(EINVAL);
            }
            match domain::socket(req.a, req.b, req.c) {
                Ok(fd) => {
                    p.sock = Some(fd);
                    Reply::ok(0)
                }
                Err(e) => Reply::err(e),
            }
        }
        op::BIND..=op::FIONREAD => match p.sock {
            Some(fd) => socket_call(fd, req),
            None => Reply::err(EBADF),
        },
        op::KLDLOAD..=op::MODSTAT | op::IFADDR => kld_call(uid, req),
        _ => Reply::err(EOPNOTSUPP),
    }
}

/// The receive timeout of `fd` in milliseconds (0: none).
fn rcvtimeo_ms(fd: domain::Fd) -> i32 {
    let Ok(v) = domain::getsockopt(fd, SOL_SOCKET, fbsd_sys::SO_RCVTIMEO as i32, 16) else {
        return 0;
    };
    if v.len() < 16 {
        return 0;
    }
    let mut s = [0u8; 8];
    let mut us = [0u8; 8];
    s.copy_from_slice(&v[..8]);
    us.copy_from_slice(&v[8..16]);
    let ms = i64::from_ne_bytes(s)
        .saturating_mul(1000)
        .saturating_add((i64::from_ne_bytes(us) + 999) / 1000);
    ms.clamp(0, i64::from(i32::MAX)) as i32
}

fn socket_call(fd: domain::Fd, req: &Request) -> Reply {
    match req.op {
        op::BIND => result(domain::bind(fd, &req.b1)),
        op::CONNECT => result(domain::connect(fd, &req.b1)),
        op::SEND => {
            let addr = (req.c & SEND_ADDR != 0).then_some(&req.b1[..]);
            let ctl = (req.c & SEND_CONTROL != 0).then_some(&req.b3[..]);
            match domain::sendmsg(fd, &req.b2, addr, ctl, req.a | MSG_DONTWAIT) {
                Ok(n) => Reply::ok(n as i64),
                Err(e) => {
                    let mut r = Reply::err(e);
                    if e == EPIPE {
                        let nosig =
                            domain::getsockopt_int(fd, SOL_SOCKET, fbsd_sys::SO_NOSIGPIPE as i32)
                                .unwrap_or(0);
                        r.y = i32::from(nosig == 0);
                    }
                    r
                }
            }
        }
        op::RECV => {
            let n = match buffer_len(req.b) {
                Ok(n) => n,
                Err(e) => return Reply::err(e),
            };
            match domain::recvfrom(fd, n, req.a | MSG_DONTWAIT) {
                Ok((data, addr, flags)) => Reply {
                    ret: data.len() as i64,
                    x: flags & !MSG_DONTWAIT,
                    b1: addr.unwrap_or_default(),
                    b2: data,
                    ..Reply::default()
                },
                Err(e) => {
                    let mut r = Reply::err(e);
                    if e == EWOULDBLOCK {
                        r.y = rcvtimeo_ms(fd);
                    }
                    r
                }
            }
        }
        op::GETSOCKNAME | op::GETPEERNAME => {
            let r = if req.op == op::GETSOCKNAME {
                domain::getsockname(fd)
            } else {
                domain::getpeername(fd)
            };
            match r {
                Ok(a) => Reply {
                    b1: a,
                    ..Reply::ok(0)
                },
                Err(e) => Reply::err(e),
            }
        }
        op::SETSOCKOPT => result(domain::setsockopt(fd, req.a, req.b, &req.b1)),
        op::GETSOCKOPT => {
            let n = match buffer_len(req.c) {
                Ok(n) => n,
                Err(e) => return Reply::err(e),
            };
            match domain::getsockopt(fd, req.a, req.b, n) {
                Ok(v) => Reply {
                    ret: v.len() as i64,
                    b1: v,
                    ..Reply::default()
                },
                Err(e) => Reply::err(e),
            }
        }
        op::SHUTDOWN => result(domain::shutdown(fd, req.a)),
        op::FIONREAD => match domain::fionread(fd) {
            Ok(n) => Reply::ok(i64::from(n)),
            Err(e) => Reply::err(e),
        },
        _ => Reply::err(EOPNOTSUPP),
    }
}

/// File ids in `kldnext` order: the kernel, then the loaded files.
fn file_ids() -> Vec<i32> {
    let mut v = vec![KERNEL_FILEID];
    let mut files: Vec<i32> = loader::files().iter().map(|f| f.id).collect();
    files.sort_unstable();
    v.extend(files);
    v
}

/// Modules in `modnext` order: (id, name, file id); the built-in ones
/// (in the kernel file) first.
fn module_list() -> Vec<(i32, String, i32)> {
    let mods = loader::modules();
    let mut v: Vec<(i32, String, i32)> = BUILTIN_MODULES
        .iter()
        .enumerate()
        .filter(|(_, n)| !mods.iter().any(|m| m.name == **n))
        .map(|(i, n)| (BUILTIN_MODID_BASE + i as i32, n.to_string(), KERNEL_FILEID))
        .collect();
    v.extend(
        mods.into_iter()
            .map(|m| (m.id, m.name, m.file.unwrap_or(KERNEL_FILEID))),
    );
    v
}

fn module_name(s: &str) -> &str {
    let b = s.rsplit('/').next().unwrap_or(s);
    b.strip_suffix(".ko").unwrap_or(b)
}

fn next_in(ids: &[i32], cur: i32) -> Reply {
    if cur == 0 {
        return Reply::ok(i64::from(ids.first().copied().unwrap_or(0)));
    }
    match ids.iter().position(|&i| i == cur) {
        Some(k) => Reply::ok(i64::from(ids.get(k + 1).copied().unwrap_or(0))),
        None => Reply::err(ENOENT),
    }
}

fn kld_call(uid: u32, req: &Request) -> Reply {
    let name = cstr(&req.b1);
    match req.op {
        op::KLDLOAD => {
            if uid != 0 {
                return Reply::err(EPERM);
            }
            if BUILTIN_MODULES.contains(&module_name(&name)) || module_name(&name) == "kernel" {
                return Reply::err(EEXIST);
            }
            match loader::kldload(&name) {
                Ok(id) => Reply::ok(i64::from(id)),
                Err(e) => Reply::err(e.errno),
            }
        }
        op::KLDUNLOAD => {
            if uid != 0 {
                return Reply::err(EPERM);
            }
            if req.a == KERNEL_FILEID {
                return Reply::err(EBUSY);
            }
            if loader::file_info(req.a).is_none() {
                return Reply::err(ENOENT);
            }
            result(loader::kldunload(req.a, req.b))
        }
        op::KLDFIND => {
            if module_name(&name) == "kernel" {
                return Reply::ok(i64::from(KERNEL_FILEID));
            }
            match loader::file_id(&name) {
                Some(id) => Reply::ok(i64::from(id)),
                None => Reply::err(ENOENT),
            }
        }
        op::KLDNEXT => next_in(&file_ids(), req.a),
        op::KLDSTAT => {
            if req.a == KERNEL_FILEID {
                return Reply {
                    x: 1 + loader::files().len() as i32,
                    y: KERNEL_FILEID,
                    b1: b"kernel".to_vec(),
                    b2: b"/boot/kernel/kernel".to_vec(),
                    ..Reply::ok(0)
                };
            }
            match loader::file_info(req.a) {
                Some(f) => Reply {
                    ret: f.size as i64,
                    x: 1,
                    y: f.id,
                    b1: f.filename.into_bytes(),
                    b2: f.pathname.display().to_string().into_bytes(),
                    ..Reply::default()
                },
                None => Reply::err(ENOENT),
            }
        }
        op::KLDFIRSTMOD => {
            if !file_ids().contains(&req.a) {
                return Reply::err(ENOENT);
            }
            let first = module_list().into_iter().find(|m| m.2 == req.a);
            Reply::ok(i64::from(first.map_or(0, |m| m.0)))
        }
        op::MODFIND => match module_list().into_iter().find(|m| m.1 == name) {
            Some(m) => Reply::ok(i64::from(m.0)),
            None => Reply::err(ENOENT),
        },
        op::MODNEXT => {
            let ids: Vec<i32> = module_list().iter().map(|m| m.0).collect();
            next_in(&ids, req.a)
        }
        op::MODSTAT => match module_list().into_iter().find(|m| m.0 == req.a) {
            Some((id, n, file)) => Reply {
                x: 1,
                y: file,
                b1: n.into_bytes(),
                ..Reply::ok(i64::from(id))
            },
            None => Reply::err(ENOENT),
        },
        op::SYSCTL => sysctl_call(uid, &name, &req.b2),
        op::IFADDR => match name.parse::<std::net::IpAddr>() {
            Ok(a) => match crate::scenario::kernel::ifconfig_model(uid == 0, req.a != 0, a) {
                Ok(()) => Reply::ok(0),
                Err((e, why)) => Reply {
                    b1: why.into_bytes(),
                    ..Reply::err(e)
                },
            },
            Err(_) => Reply::err(EINVAL),
        },
        _ => Reply::err(EOPNOTSUPP),
    }
}

/// `sysctlbyname()` of an integer sysctl: old value out, new value in.
fn sysctl_call(uid: u32, name: &str, new: &[u8]) -> Reply {
    let (Some(w), Some(old)) = (sysctl::width(name), sysctl::get(name)) else {
        return Reply::err(ENOENT);
    };
    let old_bytes = if w == 4 {
        (old as i32).to_ne_bytes().to_vec()
    } else {
        old.to_ne_bytes().to_vec()
    };
    let writable = sysctl::writable(name);
    if !new.is_empty() {
        // FreeBSD's sysctl_root: a read-only OID, then the privilege.
        if !writable || uid != 0 {
            return Reply::err(EPERM);
        }
        let v: i64 = match new.len() {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(new);
                i64::from(i32::from_ne_bytes(a))
            }
            8 if w == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(new);
                i64::from_ne_bytes(a)
            }
            _ => return Reply::err(EINVAL),
        };
        if !sysctl::set(name, v) {
            return Reply::err(EPERM);
        }
    }
    Reply {
        x: i32::from(writable),
        b1: old_bytes,
        ..Reply::ok(0)
    }
}
