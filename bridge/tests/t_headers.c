/*
 * The compatibility headers are complete enough for libnetgraph itself:
 * its debug log names every node type by its message cookie, so it
 * includes every netgraph header (and net/bpf.h, net/ethernet.h and the
 * netflow header) one after the other, relying on each for what the next
 * one needs. Built with the others; checks a few of the layouts.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <net/bpf.h>
#include <net/ethernet.h>
#include <netgraph/netflow/ng_netflow.h>
#include <netgraph/ng_UI.h>
#include <netgraph/ng_async.h>
#include <netgraph/ng_bpf.h>
#include <netgraph/ng_bridge.h>
#include <netgraph/ng_car.h>
#include <netgraph/ng_cisco.h>
#include <netgraph/ng_deflate.h>
#include <netgraph/ng_device.h>
#include <netgraph/ng_echo.h>
#include <netgraph/ng_eiface.h>
#include <netgraph/ng_etf.h>
#include <netgraph/ng_ether.h>
#include <netgraph/ng_ether_echo.h>
#include <netgraph/ng_frame_relay.h>
#include <netgraph/ng_gif.h>
#include <netgraph/ng_gif_demux.h>
#include <netgraph/ng_hole.h>
#include <netgraph/ng_hub.h>
#include <netgraph/ng_iface.h>
#include <netgraph/ng_ip_input.h>
#include <netgraph/ng_ipfw.h>
#include <netgraph/ng_ksocket.h>
#include <netgraph/ng_l2tp.h>
#include <netgraph/ng_lmi.h>
#include <netgraph/ng_message.h>
#include <netgraph/ng_mppc.h>
#include <netgraph/ng_nat.h>
#include <netgraph/ng_one2many.h>
#include <netgraph/ng_patch.h>
#include <netgraph/ng_pipe.h>
#include <netgraph/ng_ppp.h>
#include <netgraph/ng_pppoe.h>
#include <netgraph/ng_pptpgre.h>
#include <netgraph/ng_pred1.h>
#include <netgraph/ng_rfc1490.h>
#include <netgraph/ng_socket.h>
#include <netgraph/ng_source.h>
#include <netgraph/ng_split.h>
#include <netgraph/ng_tag.h>
#include <netgraph/ng_tcpmss.h>
#include <netgraph/ng_tee.h>
#include <netgraph/ng_tty.h>
#include <netgraph/ng_vjc.h>
#include <netgraph/ng_vlan.h>
#include <netinet/in.h>

#include "ngtest.h"

static const struct {
	int cookie;
	const char *type;
} cookies[] = {
	{ NGM_UI_COOKIE, "UI" }, { NGM_BPF_COOKIE, "BPF" },
	{ NGM_BRIDGE_COOKIE, "BRIDGE" }, { NGM_CISCO_COOKIE, "CISCO" },
	{ NGM_ECHO_COOKIE, "ECHO" }, { NGM_GENERIC_COOKIE, "GENERIC" },
	{ NGM_HOLE_COOKIE, "HOLE" }, { NGM_KSOCKET_COOKIE, "KSOCKET" },
	{ NGM_NAT_COOKIE, "NAT" }, { NGM_NETFLOW_COOKIE, "NETFLOW" },
	{ NGM_SOCKET_COOKIE, "SOCKET" }, { NGM_VLAN_COOKIE, "VLAN" },
};

int
main(void)
{
	size_t k;

	t_name = "t_headers";
	CHECK(sizeof(struct bpf_insn) == 8, "struct bpf_insn: %zu bytes",
	    sizeof(struct bpf_insn));
	CHECK(offsetof(struct ng_bpf_hookprog, bpf_prog_len) == 3 * NG_HOOKSIZ,
	    "struct ng_bpf_hookprog layout");
	CHECK(sizeof(struct ng_cisco_ipaddr) == 8, "struct ng_cisco_ipaddr: %zu bytes",
	    sizeof(struct ng_cisco_ipaddr));
	CHECK(NGM_KSOCKET_COOKIE == 942710669, "ksocket cookie");
	CHECK(NGM_NETFLOW_COOKIE == 1365756954, "netflow cookie");
	for (k = 0; k < sizeof(cookies) / sizeof(cookies[0]); k++)
		CHECK(cookies[k].cookie != 0, "cookie of %s", cookies[k].type);
	return (t_done());
}
