"""The swarm: the embedded tracker and the scraping of other trackers.

- `tracker`: the peer store (`Tracker`): announces, scrapes, expiry, stats for the catalogue.
- `http_tracker`: HTTP announce/scrape, as an ASGI app or a dedicated listener.
- `udp_tracker`: UDP announce/scrape (BEP 15) with stateless connection ids.
- `scrape`: clients that scrape external trackers over UDP and HTTP.
- `backoff`: how scrape failures are classified and when to try a tracker again.
- `addresses`: refusing server-side connections to private and loopback addresses.
"""
