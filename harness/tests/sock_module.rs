//! The socket layer against real loaded modules: a C module that registers a
//! protocol family with DOMAIN_SET (built here with the FreeBSD kernel flags,
//! like the loader fixtures) and, when it has been built, `build/ng_socket.ko`
//! itself. Both go through the loader, the exported kernel entry points and
//! the module's own inline code (SOCK_RECVBUF_LOCK, so_pcb, ...).

mod kmod_util;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ngharness::kern::domain as kd;
use ngharness::kern::thread::{self as kthread, Cred};
use ngharness::kern::{loader, mbuf as kmbuf, take_violations};

const DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
const EPERM: i32 = fbsd_sys::EPERM as i32;
const EBUSY: i32 = fbsd_sys::EBUSY as i32;
const EAFNOSUPPORT: i32 = fbsd_sys::EAFNOSUPPORT as i32;
const EDESTADDRREQ: i32 = fbsd_sys::EDESTADDRREQ as i32;
const EMSGSIZE: i32 = fbsd_sys::EMSGSIZE as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;
const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
const MSG_TRUNC: i32 = fbsd_sys::MSG_TRUNC as i32;

/// A protocol family the way a module writes it: DOMAIN_SET, protosw
/// statics, SOCK_RECVBUF_LOCK + sbappendaddr_locked + sorwakeup_locked.
const SOCKDOM_C: &str = r#"
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/protosw.h>
#include <sys/domain.h>
#include <sys/priv.h>
#include <sys/errno.h>

#ifdef PINNED
#define SD_NAME		"sockdom_pinned"
#define SD_FAMILY	81
#define SD_DOMF		0
#else
#define SD_NAME		"sockdom"
#define SD_FAMILY	80
#define SD_DOMF		DOMF_UNLOADABLE
#endif

static MALLOC_DEFINE(M_SDPCB, "sockdom_pcb", "sockdom test PCBs");
static int sd_count;

struct sdpcb {
	struct socket	*so;
	int		 proto;
};

static int
sd_attach(struct socket *so, int proto, struct thread *td)
{
	struct sdpcb *p;
	int error;

	if (so->so_proto->pr_protocol == 2 &&
	    (error = priv_check(td, PRIV_NETGRAPH_CONTROL)) != 0)
		return (error);
	if ((error = soreserve(so, 1024, 2048)) != 0)
		return (error);
	p = malloc(sizeof(*p), M_SDPCB, M_WAITOK | M_ZERO);
	p->so = so;
	p->proto = so->so_proto->pr_protocol;
	so->so_pcb = p;
	sd_count++;
	return (0);
}

static void
sd_detach(struct socket *so)
{
	free(so->so_pcb, M_SDPCB);
	so->so_pcb = NULL;
	sd_count--;
}

static int
sd_send(struct socket *so, int flags, struct mbuf *m, struct sockaddr *addr,
    struct mbuf *control, struct thread *td)
{
	if (control != NULL) {
		m_freem(control);
		m_freem(m);
		return (EINVAL);
	}
	if (addr == NULL) {
		m_freem(m);
		return (EDESTADDRREQ);
	}
	/* Loopback: the datagram comes back from the address it was sent to. */
	SOCK_RECVBUF_LOCK(so);
	if (sbappendaddr_locked(&so->so_rcv, addr, m, NULL) == 0) {
		soroverflow_locked(so);
		m_freem(m);
		return (ENOBUFS);
	}
	sorwakeup_locked(so);
	return (0);
}

static int
sd_sockaddr(struct socket *so, struct sockaddr *sa)
{
	sa->sa_len = 5;
	sa->sa_family = SD_FAMILY;
	sa->sa_data[0] = 's';
	sa->sa_data[1] = 'd';
	sa->sa_data[2] = '0' + ((struct sdpcb *)so->so_pcb)->proto;
	return (0);
}

static int
sd_disconnect(struct socket *so)
{
	return (0);
}

int
sd_shutdown_all(void)
{
	/* What a node shutdown does to its sockets. */
	return (sd_count);
}

static struct protosw sd_ctl_protosw = {
	.pr_type =	SOCK_DGRAM,
	.pr_protocol =	2,
	.pr_flags =	PR_ATOMIC | PR_ADDR,
	.pr_attach =	sd_attach,
	.pr_detach =	sd_detach,
	.pr_send =	sd_send,
	.pr_sockaddr =	sd_sockaddr,
	.pr_disconnect = sd_disconnect,
};

static struct protosw sd_data_protosw = {
	.pr_type =	SOCK_DGRAM,
	.pr_protocol =	1,
	.pr_flags =	PR_ATOMIC | PR_ADDR,
	.pr_attach =	sd_attach,
	.pr_detach =	sd_detach,
	.pr_send =	sd_send,
	.pr_sockaddr =	sd_sockaddr,
	.pr_disconnect = sd_disconnect,
};

static struct domain sddomain = {
	.dom_family =	SD_FAMILY,
	.dom_name =	SD_NAME,
	.dom_flags =	SD_DOMF,
	.dom_nprotosw =	2,
	.dom_protosw =	{ &sd_ctl_protosw, &sd_data_protosw },
};

DOMAIN_SET(sd);

static int
sd_modevent(module_t mod, int type, void *data)
{
	switch (type) {
	case MOD_LOAD:
		return (0);
	case MOD_UNLOAD:
#ifdef PINNED
		return (0);	/* the bug under test: unloads with its domain registered */
#else
		return (sd_count != 0 ? EBUSY : 0);
#endif
	default:
		return (EOPNOTSUPP);
	}
}

static moduledata_t sd_mod = { SD_NAME, sd_modevent, NULL };
DECLARE_MODULE(SD_MODSYM, sd_mod, SI_SUB_PROTO_DOMAIN, SI_ORDER_ANY);
"#;

static SERIAL: Mutex<()> = Mutex::new(());

fn kernel() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    loader::boot();
    kthread::set_curthread(kthread::new_thread(Cred::Root));
    let _ = take_violations();
    g
}

/// Builds the C module (variant `pinned`: no DOMF_UNLOADABLE, unloads
/// anyway). `None` (after printing why) when the sysroot or LLVM is missing.
fn build_sockdom(pinned: bool) -> Option<PathBuf> {
    let inc = kmod_util::sysroot_include("sys/domain.h")?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sock-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let name = if pinned { "sockdom_pinned" } else { "sockdom" };
    let pid = std::process::id();
    let src = dir.join(format!("{name}.{pid}.c"));
    std::fs::write(&src, SOCKDOM_C).expect("write fixture source");
    let obj = dir.join(format!("{name}.{pid}.o"));
    let modsym = format!("-DSD_MODSYM={name}");
    let mut extra = vec![
        "-Wno-format",
        "-Wno-gnu-flexible-array-initializer",
        "-Wno-missing-prototypes",
        &modsym,
    ];
    if pinned {
        extra.push("-DPINNED");
    }
    kmod_util::compile(&src, &obj, &inc, kmod_util::Model::Kernel, &extra)?;
    let ko = dir.join(format!("{name}.ko"));
    let tmp = dir.join(format!("{name}.{pid}.ko.tmp"));
    kmod_util::link(&obj, &tmp)?;
    let _ = std::fs::remove_file(&obj);
    let _ = std::fs::remove_file(&src);
    std::fs::rename(&tmp, &ko).expect("rename module");
    Some(ko)
}

fn sa(fam: i32, text: &str) -> Vec<u8> {
    let mut v = vec![0u8, fam as u8];
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v[0] = v.len() as u8;
    v
}

#[track_caller]
fn expect_clean() {
    let v = take_violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

#[test]
fn c_module_domain_round_trip_and_unload() {
    let _k = kernel();
    let Some(ko) = build_sockdom(false) else {
        return;
    };
    let fam = 80;
    let mbufs = kmbuf::live();
    let id = loader::load(&ko).unwrap_or_else(|e| panic!("load failed: {e}"));
    assert!(
        kd::registered_families().contains(&(fam, "sockdom".to_string())),
        "DOMAIN_SET ran domain_add"
    );

    // Control sockets need privilege (priv_check from pr_attach).
    let user = kthread::new_thread(Cred::User(1000));
    assert_eq!(
        kthread::with_curthread(user, || kd::socket(fam, DGRAM, 2)),
        Err(EPERM)
    );
    let ctl = kd::socket(fam, DGRAM, 0).expect("root control socket");
    let data = kthread::with_curthread(user, || kd::socket(fam, DGRAM, 1)).expect("data socket");
    assert_eq!(
        kd::getsockname(ctl),
        Ok(vec![5, fam as u8, b's', b'd', b'2'])
    );
    assert_eq!(
        kd::getsockname(data),
        Ok(vec![5, fam as u8, b's', b'd', b'1'])
    );
    assert_eq!(
        kd::getsockopt_int(
            data,
            fbsd_sys::SOL_SOCKET as i32,
            fbsd_sys::SO_RCVBUF as i32
        ),
        Ok(2048)
    );

    // sendto → sosend checks → the module's pr_send → sbappendaddr_locked.
    let to = sa(fam, "loop");
    assert_eq!(kd::sendto(ctl, b"ping", Some(&to), 0), Ok(4));
    assert!(kd::readable(ctl));
    assert_eq!(
        kd::recvfrom(ctl, 100, 0),
        Ok((b"ping".to_vec(), Some(to.clone()), 0))
    );
    assert_eq!(kd::sendto(ctl, &[1u8; 1025], Some(&to), 0), Err(EMSGSIZE));
    assert_eq!(kd::sendto(ctl, b"x", None, 0), Err(EDESTADDRREQ));
    let cmsg = [12u8, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    assert_eq!(
        kd::sendmsg(ctl, b"x", Some(&to), Some(&cmsg), 0),
        Err(EINVAL)
    );
    assert_eq!(kd::sendto(ctl, &[9u8; 600], Some(&to), 0), Ok(600));
    let (d, _, f) = kd::recvfrom(ctl, 10, 0).unwrap();
    assert_eq!((d.len(), f & MSG_TRUNC), (10, MSG_TRUNC));
    assert_eq!(
        kd::recvfrom(ctl, 10, MSG_DONTWAIT),
        Err(fbsd_sys::EWOULDBLOCK as i32)
    );
    // Fill the 2048-byte receive buffer: the module sees sbappendaddr_locked
    // return 0, frees the datagram itself and reports ENOBUFS.
    let mut sent = 0;
    while kd::sendto(data, &[3u8; 500], Some(&to), 0).is_ok() {
        sent += 1;
    }
    assert!(sent >= 3, "{sent}");
    assert_eq!(
        kd::sendto(data, &[3u8; 500], Some(&to), 0),
        Err(fbsd_sys::ENOBUFS as i32)
    );
    assert_eq!(kd::getpeername(ctl), Err(fbsd_sys::ENOTCONN as i32));

    // The module refuses to unload while it has sockets.
    assert_eq!(loader::unload(id), Err(EBUSY));
    kd::close(ctl).unwrap();
    kd::close(data).unwrap();
    assert_eq!(kd::open_sockets_of(fam), 0);
    assert_eq!(
        kmbuf::live(),
        mbufs,
        "queued records were freed with the sockets"
    );
    // Now it unloads; its SYSUNINIT runs domain_remove (DOMF_UNLOADABLE).
    loader::unload(id).expect("unload");
    assert!(!kd::registered_families().iter().any(|(f, _)| *f == fam));
    assert_eq!(kd::socket(fam, DGRAM, 1), Err(EAFNOSUPPORT));
    assert!(kd::check_all().is_empty());
    expect_clean();
}

#[test]
fn c_module_unloaded_with_its_domain_registered_is_reported() {
    let _k = kernel();
    let Some(ko) = build_sockdom(true) else {
        return;
    };
    let fam = 81;
    let id = loader::load(&ko).unwrap_or_else(|e| panic!("load failed: {e}"));
    let fd = kd::socket(fam, DGRAM, 1).expect("data socket");
    loader::unload(id).expect("the buggy module lets itself be unloaded");
    let v = take_violations();
    assert!(v.iter().any(|m| m.contains("still registered")), "{v:#?}");
    assert!(v.iter().any(|m| m.contains("still open")), "{v:#?}");
    // Nothing calls into the unloaded (PROT_NONE) image any more.
    assert_eq!(kd::socket(fam, DGRAM, 1), Err(EAFNOSUPPORT));
    assert_eq!(
        kd::sendto(fd, b"x", Some(&sa(fam, "a")), 0),
        Err(fbsd_sys::EBADF as i32)
    );
    kd::close(fd).unwrap();
    assert_eq!(kd::open_sockets_of(fam), 0);
    // The PCB of the socket died with the module's malloc type: reported there.
    let _ = take_violations();
}

// ---------------------------------------------------------------------------
// The project's ng_socket.ko, when it has been built (`make ko`).

fn ng_socket_ko() -> Option<PathBuf> {
    // `$NGSOCK_BUILD` (the coverage run's build/cov), else build/.
    let p = std::env::var_os("NGSOCK_BUILD")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"),
            PathBuf::from,
        )
        .join("ng_socket.ko");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: build/ng_socket.ko not built (make ko)");
        None
    }
}

/// `struct ng_mesg` header (56 bytes) for a generic message to `path`.
fn ng_msg(cookie: u32, cmd: u32, token: u32, args: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(56 + args.len());
    v.push(fbsd_sys::NG_VERSION as u8); // version
    v.extend_from_slice(&[0u8; 3]); // spare
    v.extend_from_slice(&(args.len() as u32).to_ne_bytes()); // arglen
    v.extend_from_slice(&cmd.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes()); // flags
    v.extend_from_slice(&token.to_ne_bytes());
    v.extend_from_slice(&cookie.to_ne_bytes());
    let mut cmdstr = [0u8; 32];
    let s = format!("cmd{cmd}");
    cmdstr[..s.len()].copy_from_slice(s.as_bytes());
    v.extend_from_slice(&cmdstr);
    v.extend_from_slice(args);
    v
}

#[test]
fn ng_socket_module_over_the_socket_layer() {
    let _k = kernel();
    let Some(ko) = ng_socket_ko() else { return };
    let fam = fbsd_sys::AF_NETGRAPH as i32;
    let id = match loader::load(&ko) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("SKIP: build/ng_socket.ko does not load here: {e}");
            let _ = take_violations();
            return;
        }
    };
    assert!(kd::registered_families()
        .iter()
        .any(|(f, n)| *f == fam && n == "netgraph"));
    let user = kthread::new_thread(Cred::User(1000));
    assert_eq!(
        kthread::with_curthread(user, || kd::socket(fam, DGRAM, 2)),
        Err(EPERM)
    );
    let cs = kd::socket(fam, DGRAM, 2).expect("control socket");
    // Unnamed node: getsockname gives "[id]".
    let name = kd::getsockname(cs).expect("getsockname");
    assert_eq!((name[0], name[1]), (34, fam as u8), "{name:?}");
    assert_eq!(name[2], b'[');
    // bind names the node.
    let mut bsa = vec![0u8, fam as u8];
    bsa.extend_from_slice(b"sockt\0");
    bsa[0] = bsa.len() as u8;
    assert_eq!(kd::bind(cs, &bsa), Ok(()));
    let name = kd::getsockname(cs).unwrap();
    assert_eq!(&name[2..8], b"sockt\0");
    // NGM_NODEINFO to ".": the reply is queued before sendto returns.
    let mut dst = vec![0u8, fam as u8];
    dst.extend_from_slice(b".\0");
    dst[0] = dst.len() as u8;
    let msg = ng_msg(fbsd_sys::NGM_GENERIC_COOKIE, fbsd_sys::NGM_NODEINFO, 7, &[]);
    assert_eq!(kd::sendto(cs, &msg, Some(&dst), 0), Ok(msg.len()));
    assert!(kd::readable(cs), "synchronous reply already queued");
    let (reply, from, _) = kd::recvfrom(cs, 4096, 0).expect("reply");
    assert!(reply.len() >= 56, "{}", reply.len());
    let from = from.expect("source address");
    assert_eq!((from[0], from[1]), (34, fam as u8));
    assert_eq!(from[2], b'[');
    // Data socket connected to the node.
    let ds = kd::socket(fam, DGRAM, 1).expect("data socket");
    let mut csa = vec![0u8, fam as u8];
    csa.extend_from_slice(b"sockt:\0");
    csa[0] = csa.len() as u8;
    assert_eq!(kd::connect(ds, &csa), Ok(()));
    // No hooks: sending data without a hook name fails; bind is unsupported.
    assert!(kd::sendto(ds, b"x", None, 0).is_err());
    assert_eq!(kd::bind(ds, &bsa), Err(EOPNOTSUPP));
    assert_eq!(
        kd::connect(cs, &csa),
        Err(EINVAL),
        "control sockets never connect"
    );
    kd::close(ds).unwrap();
    kd::close(cs).unwrap();
    ngharness::kern::sched::run_until_idle();
    assert_eq!(kd::open_sockets_of(fam), 0);
    // Like FreeBSD's, this ng_socket refuses to unload by default.
    assert_eq!(loader::unload(id), Err(EBUSY));
    // Unlike FreeBSD's, it sets DOMF_UNLOADABLE: allowed to, with no socket
    // left it unloads and its SYSUNINIT removes the domain.
    assert!(ngharness::kern::sysctl::set(
        "net.graph.socket.allow_unload",
        1
    ));
    loader::unload(id).expect("ng_socket unloads once its sockets are gone");
    assert!(!kd::registered_families().iter().any(|(f, _)| *f == fam));
    assert_eq!(kd::socket(fam, DGRAM, 2), Err(EAFNOSUPPORT));
    assert!(kd::check_all().is_empty());
    let v = take_violations();
    assert!(v.is_empty(), "{v:#?}");
}
