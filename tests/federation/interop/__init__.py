"""Running real servers on 127.0.0.1 for the federation interop tests and benchmarks.

- `children`: a server in a child process that binds its own port and reports it.
- `instances`: real holdfast instances served by uvicorn, in a thread or a child process,
  each with its own data folder.
- `sinks`: follower actors whose inboxes only count what arrives.
- `bovine`: a bovine-herd server (PyPI `bovine-herd`) with one actor and its client.
- `pasture`: fediverse-pasture's `verify_actor` server.
- `tls`: a self-signed certificate for 127.0.0.1 and localhost.
"""
