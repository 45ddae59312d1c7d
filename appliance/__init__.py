"""The box inline: bridge, kernel fast path (iptables, conntrack marks,
ipsets), enforcement, and the network-namespace lab.

Only this package (and the NFQUEUE source) changes kernel state. The packet
path it builds, in the order a bridged packet meets it (filter/FORWARD):

    REEFGUARD-FORWARD
      marked by a queue verdict (NF_REPEAT)? -> REEFGUARD-VERDICT: save the mark
                                               in conntrack, accept/drop/reset
      REEFGUARD-BLOCK: quarantined device / blocked destination -> drop
      restore the conntrack mark -> bypass: accept, drop: drop, reject: reset
      REEFGUARD-FASTPATH: pure ACKs / small ICMP echo no rule can match -> accept
      new flow of a source over the new-flow limit -> REEFGUARD-OVER-LIMIT (policy)
      REEFGUARD-QUEUE: NFQUEUE --queue-balance (fail-open: --queue-bypass)
"""
