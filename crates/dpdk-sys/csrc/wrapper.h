/* The DPDK API surface rvs binds. bindgen reads this; the allowlist in build.rs keeps
 * the output to what the project uses. */
#include <stdio.h>
#include <rte_config.h>
#include <rte_log.h>
#include <rte_telemetry.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_flow.h>
#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_eth_ring.h>
#include <rte_pdump.h>
#include <rte_pcapng.h>
/* libpcap's filter compiler and classic BPF interpreter (capture filters). */
#include <pcap/pcap.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include "shim.h"
