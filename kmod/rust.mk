# Shared part of the two module makefiles (bmake, FreeBSD): builds the Rust
# crate for the kernel target with the module's cargo feature and adds its
# code (one LTO object, without compiler_builtins) to the module's objects.
# The C glue is compiled by bsd.kmod.mk itself, with the kernel's flags.
#
# Before cargo runs, scripts/freebsd-prereq.sh checks Rust (with its library
# sources), libclang for bindgen (from the llvm packages; LIBCLANG_PATH
# overrides) and the kernel sources in ${SYSDIR}, each failure one line
# with its fix (pkg install rust llvm19).

NGSOCK_TOP=	${.CURDIR:H:H}
CARGO?=		cargo
RUST_OBJ=	ngsock_${RUST_FEATURE}.o
OBJS+=		${RUST_OBJ}
CLEANFILES+=	${RUST_OBJ}
CLEANDIRS+=	cargo rustobj

.PATH: ${.CURDIR}/..
CFLAGS+=	-I${.CURDIR}/..
# __FILE__ in the glue names the checkout as "ngsock", wherever it is (the
# Rust code gets the same from .cargo/config.toml).
CFLAGS+=	-ffile-prefix-map=${NGSOCK_TOP}=ngsock

# The layouts come from ${SYSDIR} through bindgen, at build time. The
# kernel codegen flags are the target's in .cargo/config.toml: RUSTFLAGS
# and CARGO_ENCODED_RUSTFLAGS, which would replace them, are cleared.
${RUST_OBJ}: .PHONY
	@libclang=`sh ${NGSOCK_TOP}/scripts/freebsd-prereq.sh ${SYSDIR} ${CARGO}` || exit 1; \
	echo "cargo build (${RUST_FEATURE}), bindgen with libclang from $${libclang}"; \
	cd ${NGSOCK_TOP} && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
	    RUSTC_BOOTSTRAP=1 FREEBSD_SYSDIR=${SYSDIR} NGSOCK_NO_GLUE=1 \
	    LIBCLANG_PATH="$${libclang}" \
	    ${CARGO} build --release --target x86_64-unknown-none \
	    -Zbuild-std=core -p ngsock --features ${RUST_FEATURE} \
	    --target-dir ${.OBJDIR}/cargo
	rm -rf ${.OBJDIR}/rustobj && mkdir ${.OBJDIR}/rustobj
	cd ${.OBJDIR}/rustobj && ar x ${.OBJDIR}/cargo/x86_64-unknown-none/release/libngsock.a
	${LD} -r -o ${.TARGET} `ls ${.OBJDIR}/rustobj/*.o | grep -v compiler_builtins`
	rm -rf ${.OBJDIR}/rustobj
