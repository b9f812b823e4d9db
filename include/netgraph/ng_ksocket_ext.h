/*
 * ngsock: what its ng_ksocket(4) adds to FreeBSD's <netgraph/ng_ksocket.h>.
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Installed by `make install` (BSDmakefile) as
 * ${PREFIX}/include/netgraph/ng_ksocket_ext.h.
 * Like FreeBSD's netgraph headers it includes nothing itself: include
 * <sys/types.h>, <sys/socket.h> and <netgraph/ng_message.h> first, and in
 * the kernel <sys/mbuf.h> as well.
 *
 * None of these numbers is FreeBSD's: the statistics messages use numbers
 * FreeBSD's ksocket does not (it answers them with EINVAL), and the tag has
 * a cookie of its own, so no FreeBSD tag is ever taken for it.
 *
 * Compatibility: nothing here changes what a FreeBSD program sees unless it
 * asks. The statistics are only sent when requested; the local-address tag
 * is only made, and only honoured on packets sent, while IP_RECVDSTADDR or
 * IPV6_RECVPKTINFO is set on the socket (FreeBSD's ksocket accepts those
 * options, ignores the control data they produce and ignores the tag). ng_ksocket(4), section
 * DEVIATIONS FROM FREEBSD, lists every difference.
 */

#ifndef _NETGRAPH_NG_KSOCKET_EXT_H_
#define _NETGRAPH_NG_KSOCKET_EXT_H_

/*
 * Statistics messages (cookie NGM_KSOCKET_COOKIE): getstats and
 * getclrstats answer with a struct ng_ksocket_stats, clrstats with nothing.
 */
#define NGM_KSOCKET_GETSTATS	100
#define NGM_KSOCKET_CLRSTATS	101
#define NGM_KSOCKET_GETCLRSTATS	102

struct ng_ksocket_stats {
	uint64_t	rx_packets;	/* forwarded from the socket to the hook */
	uint64_t	rx_bytes;
	uint64_t	tx_packets;	/* handed to the socket */
	uint64_t	tx_bytes;
	uint64_t	tx_errors;	/* sosend() failed */
	uint64_t	rx_errors;	/* soreceive() failed */
	uint64_t	rx_drop_trunc;	/* datagrams over 64 KiB */
	uint64_t	rx_drop_nobufs;	/* no mbuf or local-address tag */
	uint64_t	rx_drop_hook;	/* refused by the hook */
	uint64_t	tx_drop_listen;	/* sent to a listening socket */
	uint64_t	tx_drop_badaddr; /* malformed address or local-address tag */
	uint64_t	tx_drop_nosock;	/* the node has no socket */
	uint64_t	tag_failures;	/* source-address tags not allocated */
	uint64_t	eofs;		/* end-of-file packets sent */
	uint64_t	accepts;	/* connections accepted */
};

/*
 * The local-address tag. With IP_RECVDSTADDR (IPv4) or IPV6_RECVPKTINFO
 * (IPv6) set on the socket, every datagram an unconnected ksocket forwards
 * carries, besides FreeBSD's source-address tag (NGM_KSOCKET_COOKIE,
 * NG_KSOCKET_TAG_SOCKADDR), this tag with the local address it was sent
 * to (off by default: without the option no datagram gets it). While the
 * option is on, a datagram written to a datagram ksocket's hook with this
 * tag, made by that node (id is its node ID) or by any node (id 0), leaves
 * from the tag's address
 * (IP_SENDSRCADDR or IPV6_PKTINFO control data; an IPv4 socket must be
 * bound to the wildcard address); a tag of another node's ID is ignored,
 * and a malformed one (an address not exactly a sockaddr_in of an IPv4
 * socket or a sockaddr_in6 of an IPv6 one, or not within the tag) drops the
 * datagram (counted in tx_drop_badaddr). If the tag cannot be allocated
 * for a received datagram, the datagram is dropped (rx_drop_nobufs).
 *
 * The tag's payload (m_tag_len bytes after struct m_tag):
 *   id       the node that made the tag, or 0
 *   ifindex  the interface the datagram arrived on (IPv6), else 0; the
 *            interface of an IPv6 source address
 *   sa       a struct sockaddr_in (sa_len 16) or sockaddr_in6 (sa_len 28)
 *            of the socket's family; the port is 0 (and ignored), a
 *            link-local IPv6 address has its interface in sin6_scope_id
 */
#define NGM_KSOCKET_LADDR_COOKIE	1796573268
#define NG_KSOCKET_TAG_LADDR		1

#ifdef _KERNEL
struct ng_ksocket_laddr_tag {
	struct m_tag	tag;
	ng_ID_t		id;
	uint32_t	ifindex;
	struct sockaddr	sa;	/* sa.sa_len bytes */
};
#endif /* _KERNEL */

#endif /* _NETGRAPH_NG_KSOCKET_EXT_H_ */
