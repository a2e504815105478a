"""Federation: how holdfast instances (and the wider fediverse) talk to each other.

This package holds the parts that need neither the database nor the web app:

- `keys`: an instance's RSA key (HTTP signatures) and Ed25519 key (object proofs,
  exposed as a `did:key`).
- `httpsig`: signing outgoing requests (draft-cavage, as Mastodon expects) and
  verifying incoming ones (draft-cavage and RFC 9421); `httpmessage`, `rfc9421`
  and `structured_fields` are its parts.
- `proofs`: FEP-8b32 object integrity proofs with the `eddsa-jcs-2022` cryptosuite,
  over JSON read strictly by `strictjson`.
- `documents` and `discovery`: the ActivityStreams, WebFinger and NodeInfo documents.
- `netguard` and `fetch`: outbound requests that never reach private addresses.
- `contexts`: the JSON-LD contexts we use, bundled so they are never fetched.

`holdfast verify URL-or-file` (`holdfast.cli.verify`) checks proofs from the shell.

Errors form one small tree (see `errors`)::

    FederationError
    ├── KeyFormatError          key material that cannot be read
    ├── SignatureRejected       an incoming request's signature is refused (401)
    ├── ProofRejected           an object's integrity proof is refused
    ├── ProofCreationError      a proof cannot be made for this document
    ├── DocumentError           input that cannot become a federation document
    │   └── WebFingerError      a WebFinger query that is malformed (400) or unknown (404)
    ├── UnsafeAddressError      an outbound request to a refused address
    └── FetchError              an outbound fetch that failed or was too large
"""
