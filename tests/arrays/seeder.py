"""A libtorrent seeder in its own process, for reading arrays from a real swarm.

    python -m tests.arrays.seeder SAVE_PATH TORRENT [TORRENT ...]

Listens on 127.0.0.1 (uTP, DHT, LSD, UPnP and NAT-PMP off), seeds the torrents from
SAVE_PATH without rechecking them, prints one JSON line `{"port": N}` once every torrent
is seeding, then answers each line on stdin: `stats` prints the payload bytes uploaded so
far per infohash (`{"uploaded": {...}, "total": N}`). It exits when stdin closes, or
after --lifetime seconds.

Its peer connections get TCP_NODELAY, as the reader's do: libtorrent leaves Nagle's
algorithm on, and then a choke/unchoke pair or a request waits for the other side's
delayed ACK (40 ms on Linux) whenever a reader comes back after a pause.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings

import libtorrent as lt

from holdfast.arrays.peers import set_nodelay


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("save_path")
    parser.add_argument("torrents", nargs="+")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        session = lt.session(
            {
                "listen_interfaces": "127.0.0.1:0",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "enable_outgoing_utp": False,
                "enable_incoming_utp": False,
                "allow_multiple_connections_per_ip": True,
                "tick_interval": 5,
                "unchoke_slots_limit": -1,
                "close_redundant_connections": False,
                "alert_mask": 0,
            }
        )
        handles = []
        for path in args.torrents:
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(path)
            params.save_path = args.save_path
            params.flags = (params.flags | lt.torrent_flags.seed_mode) & ~(
                lt.torrent_flags.auto_managed | lt.torrent_flags.paused
            )
            handles.append(session.add_torrent(params))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(h.status().is_seeding for h in handles):
            break
        time.sleep(0.05)
    else:
        print(json.dumps({"error": "torrents did not start seeding"}), flush=True)
        sys.exit(1)
    print(json.dumps({"port": session.listen_port()}), flush=True)
    timer = threading.Timer(args.lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    threading.Thread(target=_nodelay, args=(args.lifetime,), daemon=True).start()
    for line in sys.stdin:
        if line.strip() == "stats":
            uploaded = {
                str(h.info_hashes().get_best()): h.status().total_payload_upload for h in handles
            }
            print(json.dumps({"uploaded": uploaded, "total": sum(uploaded.values())}), flush=True)
    timer.cancel()


def _nodelay(lifetime: float) -> None:
    """TCP_NODELAY on each new peer connection, as the reader sets it on its own."""
    end = time.monotonic() + lifetime
    while time.monotonic() < end:
        set_nodelay()
        time.sleep(0.05)


if __name__ == "__main__":
    main()
