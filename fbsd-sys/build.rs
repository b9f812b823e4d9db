//! Generates the FreeBSD 15 amd64 kernel bindings with bindgen.
//!
//! Header source, in order of preference:
//! * `FREEBSD_SYSDIR`: a FreeBSD kernel source tree (`/usr/src/sys` on FreeBSD);
//! * `FREEBSD_SYSROOT`: the header sysroot assembled by `scripts/bootstrap.sh`;
//! * the bootstrap script's default cache location.
//!
//! The same bindings serve the kernel modules (target `x86_64-unknown-none`)
//! and the host harness (x86_64 Linux): both are LP64 SysV x86-64, so every
//! layout is identical, and bindgen's layout assertions check it at compile time.

use std::env;
use std::path::PathBuf;

/// `__FreeBSD_version` of 15.0-RELEASE; embedded in the kernel dependency of every module.
pub const FREEBSD_VERSION: u32 = 1_500_068;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let kmod_inc = manifest.join("../kmod/include");

    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../kmod/include");
    println!("cargo:rerun-if-env-changed=FREEBSD_SYSROOT");
    println!("cargo:rerun-if-env-changed=FREEBSD_SYSDIR");

    let mut args: Vec<String> = vec![
        "--target=x86_64-unknown-freebsd15.0".into(),
        "-nostdinc".into(),
        "-D_KERNEL".into(),
        "-DKLD_MODULE".into(),
        format!("-D__FreeBSD_version={FREEBSD_VERSION}"),
        "-ffreestanding".into(),
        "-std=gnu17".into(),
        format!("-I{}", kmod_inc.display()),
        "-include".into(),
        "opt_global.h".into(),
    ];
    if let Ok(sysdir) = env::var("FREEBSD_SYSDIR") {
        // A kernel source tree: machine/ and x86/ are links the kmod build normally creates.
        let inc = out.join("machlinks");
        let _ = std::fs::create_dir_all(&inc);
        for (link, target) in [("machine", "amd64/include"), ("x86", "x86/include")] {
            let l = inc.join(link);
            let _ = std::fs::remove_file(&l);
            #[cfg(unix)]
            std::os::unix::fs::symlink(PathBuf::from(&sysdir).join(target), &l)
                .expect("symlink machine headers");
        }
        args.push(format!("-I{}", inc.display()));
        args.push(format!("-I{sysdir}"));
        args.push(format!("-I{sysdir}/contrib/ck/include"));
        println!("cargo:rustc-env=FBSD_HEADERS={sysdir}");
    } else {
        let sysroot = env::var("FREEBSD_SYSROOT").unwrap_or_else(|_| {
            let home = env::var("HOME").unwrap_or_else(|_| "/root".into());
            let cache = env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
            format!("{cache}/ngsock/freebsd-15.0-sysroot")
        });
        let inc = PathBuf::from(&sysroot).join("include");
        if !inc.join("netgraph/netgraph.h").exists() {
            panic!(
                "FreeBSD 15.0 headers not found in {} (run `make` or scripts/bootstrap.sh, \
                 or set FREEBSD_SYSROOT / FREEBSD_SYSDIR)",
                inc.display()
            );
        }
        args.push(format!("-isystem{}", inc.display()));
        println!("cargo:rustc-env=FBSD_HEADERS={}", inc.display());
    }

    let types = [
        // netgraph
        "ng_.*",
        "ngm_.*",
        "nodeinfo",
        "linkinfo",
        "hooklist",
        "namelist",
        "typeinfo",
        "typelist",
        "listtypes",
        "sockaddr_ng",
        "ngsock",
        "ngpcb",
        "sa_tag",
        "flow_manager",
        // module and linker plumbing
        "module",
        "moduledata",
        "moduledata_t",
        "modeventtype",
        "modeventhand_t",
        "mod_metadata",
        "mod_depend",
        "mod_version",
        "sysinit",
        "sysinit_cfunc_t",
        "sysinit_nfunc_t",
        "sysinit_sub_id",
        "sysinit_elem_order",
        "malloc_type",
        "malloc_type_internal",
        "malloc_type_stats",
        "sysctl_oid",
        "sysctl_oid_list",
        "sysctl_req",
        "linker_file",
        // locks, threads, credentials
        "mtx",
        "lock_object",
        "sx",
        "thread",
        "proc",
        "ucred",
        "prison",
        "pcpu",
        "vnet",
        // mbufs
        "mbuf",
        "m_tag",
        "pkthdr",
        "m_ext",
        "mb_args",
        // sockets
        "socket",
        "sockbuf",
        "sockopt",
        "protosw",
        "domain",
        "uio",
        "iovec",
        "sockaddr",
        "sockaddr_in",
        "sockaddr_in6",
        "sockaddr_un",
        "sockaddr_storage",
        "in_addr",
        "in6_addr",
        "so_upcall_t",
        "so_rcv",
        "selinfo",
        "sb_upcall",
        // kernel linker and thread model (harness loader)
        "mtx_args",
        "thread0_storage",
        // socket layer above a registered protocol family (harness kern::domain / kern::sockbuf)
        "pr_send_flags_t",
    ];
    let funcs = [
        // malloc(9), printf, panic, sleep/wakeup
        "malloc",
        "free",
        "malloc_init",
        "malloc_uninit",
        "printf",
        "snprintf",
        "panic",
        "log",
        "_sleep",
        "wakeup",
        "wakeup_one",
        "bcopy",
        "bzero",
        "memcpy",
        "memset",
        "memcmp",
        "strlen",
        "strcmp",
        "strncmp",
        "strlcpy",
        "critical_enter",
        "critical_exit",
        // locks
        "_mtx_init",
        "_mtx_destroy",
        "__mtx_lock_flags",
        "__mtx_unlock_flags",
        "mtx_sysinit",
        // mbufs and tags
        "m_freem",
        "m_get2",
        "m_getm2",
        "m_pullup",
        "m_prepend",
        "m_defrag",
        "m_copydata",
        "m_copyback",
        "m_length",
        "m_fixhdr",
        "m_tag_alloc",
        "m_tag_delete",
        "m_tag_delete_chain",
        "m_tag_locate",
        "m_tag_free_default",
        "m_adj",
        "m_cat",
        "m_uiotombuf",
        "m_mbuftouio",
        // sockets
        "socreate",
        "sobind",
        "soconnect",
        "solisten",
        "solisten_dequeue",
        "soaccept",
        "sosockaddr",
        "sopeeraddr",
        "sosend",
        "soreceive",
        "soclose",
        "sosetopt",
        "sogetopt",
        "soshutdown",
        "soreserve",
        "soupcall_set",
        "soupcall_clear",
        "solisten_upcall_set",
        "soisconnected",
        "soisdisconnected",
        "socantsendmore",
        "socantrcvmore",
        "soroverflow",
        "soroverflow_locked",
        "sorwakeup_locked",
        "sowwakeup_locked",
        "sbappendaddr",
        "sbappendaddr_locked",
        "sodupsockaddr",
        "sooptcopyin",
        "sooptcopyout",
        "sorele_locked",
        // protocol registration, privilege, modules
        "domain_add",
        "domain_remove",
        "pf_proto_register",
        "pf_proto_unregister",
        "priv_check",
        "priv_check_cred",
        "kern_kldload",
        "kern_kldunload",
        "module_register_init",
        "hashinit",
        "hashinit_flags",
        "hashdestroy",
        "sysctl_handle_long",
        "sysctl_handle_int",
        // netgraph
        "ng_.*",
        // malloc(9), uma(9), mbuf(9), mbuf_tags(9) (harness memory model)
        "zfree",
        "realloc",
        "reallocf",
        "mallocarray",
        "malloc_aligned",
        "malloc_usable_size",
        "uma_zalloc_arg",
        "uma_zfree_arg",
        "m_copym",
        "m_copypacket",
        "m_dup",
        "m_dup_pkthdr",
        "m_move_pkthdr",
        "m_demote",
        "m_demote_pkthdr",
        "m_pkthdr_init",
        "m_clget",
        "m_cljget",
        "m_getjcl",
        "mb_free_ext",
        "m_devget",
        "m_append",
        "m_freemp",
        "m_tag_copy",
        "m_tag_copy_chain",
        "m_tag_delete_nonpersistent",
        "uiomove",
        // socket layer above a registered protocol family (harness kern::domain / kern::sockbuf)
        "sbappend",
        "sbappend_locked",
        "sbappendrecord",
        "sbappendrecord_locked",
        "sbappendaddr_nospacecheck_locked",
        "sbflush",
        "sbflush_locked",
        "sbdroprecord",
        "sbdroprecord_locked",
        "sbreserve_locked",
        "sbrelease",
        "sbrelease_locked",
        "sbdestroy",
        "sballoc",
        "sbfree",
        "sbsetopt",
        "sbwait",
        "soisconnecting",
        "soisdisconnecting",
        "socantrcvmore_locked",
        "socantsendmore_locked",
        "protosw_register",
        "protosw_unregister",
        "pffinddomain",
        "pffindproto",
        "sopoll_generic",
        "sosend_generic",
        "soreceive_generic",
    ];
    let vars = [
        "NG_.*",
        "NGM_.*",
        "NGF_.*",
        "NGQF_.*",
        "NGQ_.*",
        "HK_.*",
        "NGD_.*",
        "NGSF_.*",
        "NG_ABI.*",
        "M_.*",
        "MT_.*",
        "MTX_.*",
        "MTAG_.*",
        "MSG_.*",
        "MOD_.*",
        "MDT_.*",
        "SI_.*",
        "SS_.*",
        "SO_.*",
        "SOL_.*",
        "SOPT_.*",
        "SOCK_.*",
        "SBS_.*",
        "SB_.*",
        "SU_.*",
        "PF_.*",
        "AF_.*",
        "PR_.*",
        "PRU_.*",
        "PRIV_.*",
        "IPPROTO_.*",
        "IP_.*",
        "IPV6_.*",
        "TCP_.*",
        "E[A-Z0-9]+",
        "ELAST",
        "MSIZE",
        "MLEN",
        "MHLEN",
        "MCLBYTES",
        "CTLTYPE_.*",
        "CTLFLAG_.*",
        "OID_AUTO",
        "PSOCK",
        "PCATCH",
        "PDROP",
        "SPEEDUP.*",
        "SOCKBUF_.*",
        "SPARE_.*",
        "DOMF_.*",
        "HASH_.*",
        "HASHINIT",
        "MAXPATHLEN",
        "SOMAXCONN",
        "LINKER_.*",
        "INADDR_.*",
        "SOCK_MAXADDRLEN",
        "M_VERSION",
        "PAGE_SIZE",
        "ng_parse_.*_type",
        "ng_parse_.*_info",
        "ng_deadnode",
        "ng_deadhook",
        "ng_deadtype",
        "M_NETGRAPH.*",
        "M_SONAME",
        "M_TEMP",
        "M_DEVBUF",
        "tick_sbt",
        "hz",
        "ticks",
        "net_epoch_preempt",
        "sysctl__net_graph.*",
        "sysctl__net_graph_children",
        "prison0",
        "vnet0",
        "__FreeBSD_version",
        "vnet_entry_.*",
        // kernel linker and thread model (harness loader)
        "LO_.*",
        "VNET_MAGIC_N",
        // mbuf(9) storage and zones (harness memory model)
        "EXT_.*",
        "MJUM.*",
        "MCLSHIFT",
        "zone_mbuf",
        "zone_pack",
        "zone_clust",
        "zone_jumbop",
        "zone_jumbo9",
        "zone_jumbo16",
        "max_linkhdr",
        "max_protohdr",
        "max_hdr",
        // socket layer above a registered protocol family (harness kern::domain / kern::sockbuf)
        "PRUS_.*",
    ];

    let mut b = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_string_lossy())
        .clang_args(&args)
        .use_core()
        .ctypes_prefix("core::ffi")
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .size_t_is_usize(true)
        .explicit_padding(false)
        .merge_extern_blocks(true);
    for t in types {
        b = b.allowlist_type(t);
    }
    for f in funcs {
        b = b.allowlist_function(f);
    }
    for v in vars {
        b = b.allowlist_var(v);
    }
    let bindings = b
        .generate()
        .expect("bindgen failed on the FreeBSD kernel headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
