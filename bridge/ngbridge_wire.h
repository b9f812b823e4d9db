/*
 * The bridge's wire protocol, C side. Must agree with
 * harness/src/wire/mod.rs (the reference) and docs/bridge.md.
 *
 * Little-endian messages on AF_UNIX/SOCK_SEQPACKET connections: a 40-byte
 * header and up to three blobs, as one packet of at most NGB_CHUNK bytes
 * followed by raw continuation packets.
 */
#ifndef NGBRIDGE_WIRE_H
#define NGBRIDGE_WIRE_H

#include <stdint.h>

#define NGB_MAGIC 0x3142474eu /* "NGB1" */
#define NGB_HDR 40
#define NGB_CHUNK 65536
#define NGB_MAX_REQUEST (8u << 20)
#define NGB_MAX_BUFFER (4u << 20)
#define NGB_KIND_REPLY 1
#define NGB_KIND_READABLE 2
/* reply flag (u16 at offset 6): a readiness token follows this reply */
#define NGB_FLAG_TOKEN_FOLLOWS 1
#define NGB_REP_FLAGS 6

/* SEND request flags (field c) */
#define NGB_SEND_CONTROL 1
#define NGB_SEND_ADDR 2

enum ngb_op {
	NGB_SOCKET = 1,
	NGB_BIND = 2,
	NGB_CONNECT = 3,
	NGB_SEND = 4,
	NGB_RECV = 5,
	NGB_GETSOCKNAME = 6,
	NGB_GETPEERNAME = 7,
	NGB_SETSOCKOPT = 8,
	NGB_GETSOCKOPT = 9,
	NGB_SHUTDOWN = 10,
	NGB_FIONREAD = 11,
	NGB_KLDLOAD = 32,
	NGB_KLDUNLOAD = 33,
	NGB_KLDFIND = 34,
	NGB_KLDNEXT = 35,
	NGB_KLDSTAT = 36,
	NGB_MODFIND = 37,
	NGB_SYSCTL = 38,
	NGB_KLDFIRSTMOD = 39,
	NGB_MODNEXT = 40,
	NGB_MODSTAT = 41,
	NGB_SETTLE = 64,
	NGB_ADVANCE = 65,
	NGB_VIOLATIONS = 66,
	NGB_STATUS = 67,
	NGB_END = 68,
};

/*
 * request: magic u32 | op u16 | 0 u16 | uid u32 | a i32 | b i32 | c i32 |
 *          len1 u32 | len2 u32 | len3 u32 | 0 u32 | blob1 blob2 blob3
 * reply:   magic u32 | kind u16 | flags u16 | error i32 | x i32 | ret i64 |
 *          y i32 | len1 u32 | len2 u32 | 0 u32 | blob1 blob2
 */
#define NGB_REP_KIND 4
#define NGB_REP_ERROR 8
#define NGB_REP_X 12
#define NGB_REP_RET 16
#define NGB_REP_Y 24
#define NGB_REP_LEN1 28
#define NGB_REP_LEN2 32

#endif
