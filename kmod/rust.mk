# Shared part of the two module makefiles (bmake, FreeBSD): builds the Rust
# crate for the kernel target with the module's cargo feature and adds its
# code (one LTO object, without compiler_builtins) to the module's objects.
# The C glue is compiled by bsd.kmod.mk itself, with the kernel's flags.

NGSOCK_TOP=	${.CURDIR}/../..
CARGO?=		cargo
RUST_OBJ=	ngsock_${RUST_FEATURE}.o
OBJS+=		${RUST_OBJ}
CLEANFILES+=	${RUST_OBJ}
CLEANDIRS+=	cargo

.PATH: ${.CURDIR}/..
CFLAGS+=	-I${.CURDIR}/..

${RUST_OBJ}: .PHONY
	cd ${NGSOCK_TOP} && env RUSTC_BOOTSTRAP=1 FREEBSD_SYSDIR=${SYSDIR} \
	    NGSOCK_NO_GLUE=1 ${CARGO} build --release --target x86_64-unknown-none \
	    -Zbuild-std=core -p ngsock --features ${RUST_FEATURE} \
	    --target-dir ${.OBJDIR}/cargo
	rm -rf ${.OBJDIR}/rustobj && mkdir ${.OBJDIR}/rustobj
	cd ${.OBJDIR}/rustobj && ar x ${.OBJDIR}/cargo/x86_64-unknown-none/release/libngsock.a
	${LD} -r -o ${.TARGET} `ls ${.OBJDIR}/rustobj/*.o | grep -v compiler_builtins`
	rm -rf ${.OBJDIR}/rustobj
