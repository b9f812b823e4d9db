/*
 * net/bpf.h: what netgraph programs use of FreeBSD's <net/bpf.h> (the
 * instruction layout of ng_bpf's programs), for programs built on Linux
 * against the ngsock bridge (docs/bridge.md).
 */
#ifndef NGBRIDGE_NET_BPF_H
#define NGBRIDGE_NET_BPF_H
#include <stdint.h>
typedef int32_t bpf_int32;
typedef uint32_t bpf_u_int32;
struct bpf_insn {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	bpf_u_int32 k;
};
struct bpf_program {
	unsigned int bf_len;
	struct bpf_insn *bf_insns;
};
#endif
