/* Exported wrappers of DPDK's static inline functions and per-lcore variables, which
 * bindgen cannot bind. One line each; no logic of our own. */
#ifndef RVS_DPDK_SHIM_H
#define RVS_DPDK_SHIM_H
#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

struct rte_mempool;
struct rte_ring;

int rvs_rte_errno(void);
unsigned rvs_lcore_id(void);
uint64_t rvs_rdtsc(void);
void rvs_pause(void);

uint16_t rvs_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t rvs_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp);
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void rvs_pktmbuf_free(struct rte_mbuf *m);
struct rte_mbuf *rvs_pktmbuf_clone(struct rte_mbuf *m, struct rte_mempool *mp);
unsigned rvs_mempool_avail_count(const struct rte_mempool *mp);

unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned rvs_ring_count(const struct rte_ring *r);
unsigned rvs_ring_free_count(const struct rte_ring *r);
#endif
